"""The machine behind the VMC: slots (selection, MDB item, name, price, stock) and their motors.

Prices are minor units (øre). A slot's ``number`` is what the customer presses; ``item`` is the
MDB item number the VMC puts in VEND REQUEST and VEND SUCCESS (the same by default). Motors jam
at ``jam_rate`` (drawn from an injectable ``random.Random``) or on the next vend of a slot marked
with ``jam()``. A jammed vend delivers nothing and keeps the stock.

Slots files (``load_slots``), JSON or TOML by suffix; ``item`` and ``stock`` are optional (the
``--slot`` flag form is ``parse_slot``'s ``NUMBER:NAME:PRICE[:STOCK[:ITEM]]``)::

    {"slots": [{"number": 1, "item": 101, "name": "Cola", "price": 2500, "stock": 5}]}

    [[slots]]
    number = 1
    name = "Cola"
    price = 2500
"""

from __future__ import annotations

import dataclasses
import json
import random
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vendgate.protocol.mdb import MAX_VEND_ITEM

DEFAULT_STOCK = 5


class SlotError(ValueError):
    """An unknown or empty slot, or a slots file that does not describe a machine."""


@dataclass(frozen=True, slots=True)
class Slot:
    number: int
    item: int
    name: str
    price: int
    stock: int = DEFAULT_STOCK

    def __post_init__(self) -> None:
        if self.number < 0 or not 0 <= self.item <= MAX_VEND_ITEM:
            raise SlotError(f"slot {self.number}: number must be >= 0, item 0..{MAX_VEND_ITEM}")
        if self.price < 0 or self.stock < 0:
            raise SlotError(f"slot {self.number}: price and stock cannot be negative")


DEFAULT_SLOTS = (
    Slot(1, 1, "Cola 0.5 l", 2500),
    Slot(2, 2, "Water 0.5 l", 2000),
    Slot(3, 3, "Crisps", 1500),
    Slot(4, 4, "Chocolate bar", 3000),
    Slot(5, 5, "Sandwich", 3500),
    Slot(6, 6, "Energy drink", 3000),
)
"""The built-in planogram: six slots, 15 to 35 NOK."""


@dataclass(frozen=True, slots=True)
class Dispense:
    """One turn of a motor: what the machine really did."""

    slot: int
    item: int
    price: int
    delivered: bool


class Machine:
    def __init__(
        self,
        slots: Iterable[Slot] = DEFAULT_SLOTS,
        *,
        jam_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        listed = list(slots)
        self._slots = {slot.number: slot for slot in listed}
        if not self._slots:
            raise SlotError("a machine needs at least one slot")
        if len(self._slots) != len(listed):
            raise SlotError("slot numbers must be unique")
        if not 0.0 <= jam_rate <= 1.0:
            raise SlotError(f"jam rate {jam_rate} is not a probability")
        self.jam_rate = jam_rate
        self._rng = rng if rng is not None else random.Random()
        self._jammed: set[int] = set()
        self.dispensed: list[Dispense] = []

    @property
    def slots(self) -> tuple[Slot, ...]:
        return tuple(self._slots[n] for n in sorted(self._slots))

    def slot(self, number: int) -> Slot:
        try:
            return self._slots[number]
        except KeyError:
            raise SlotError(f"no slot {number}") from None

    def available(self, number: int) -> Slot:
        """The slot, if it can sell now; ``SlotError`` for an unknown or sold-out slot."""
        slot = self.slot(number)
        if slot.stock == 0:
            raise SlotError(f"slot {number} ({slot.name}) is sold out")
        return slot

    def price_range(self) -> tuple[int, int]:
        prices = [slot.price for slot in self._slots.values()]
        return min(prices), max(prices)

    def jam(self, number: int) -> None:
        """The next vend of slot ``number`` fails (the product sticks)."""
        self.slot(number)
        self._jammed.add(number)

    def dispense(self, number: int, *, can_jam: bool = True) -> bool:
        """Turn the motor of slot ``number``: True if the product dropped."""
        slot = self.slot(number)
        jammed = can_jam and (number in self._jammed or self._rng.random() < self.jam_rate)
        self._jammed.discard(number)
        delivered = not jammed and slot.stock > 0
        if delivered:
            self._slots[number] = dataclasses.replace(slot, stock=slot.stock - 1)
        self.dispensed.append(Dispense(number, slot.item, slot.price, delivered))
        return delivered


def parse_slot(text: str) -> Slot:
    """A slot from ``NUMBER:NAME:PRICE[:STOCK[:ITEM]]`` (the ``--slot`` flag): ``1:Cola:2500``."""
    parts = text.split(":")
    if not 3 <= len(parts) <= 5 or not parts[1]:
        raise SlotError(f"slot {text!r}: expected NUMBER:NAME:PRICE[:STOCK[:ITEM]]")
    try:
        number, price = int(parts[0]), int(parts[2])
        stock = int(parts[3]) if len(parts) > 3 else DEFAULT_STOCK
        item = int(parts[4]) if len(parts) > 4 else number
    except ValueError:
        raise SlotError(f"slot {text!r}: number, price, stock and item are integers") from None
    return Slot(number, item, parts[1], price, stock)


def load_slots(path: Path) -> tuple[Slot, ...]:
    """Slots from a JSON or TOML file (see the module docstring)."""
    text = path.read_text(encoding="utf-8")
    try:
        data: object = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise SlotError(f"{path}: not valid {kind}: {exc}") from exc
    rows = data.get("slots") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows:
        raise SlotError(f"{path}: expected a non-empty list of slots under 'slots'")
    slots = tuple(_slot_from(row, path) for row in rows)
    numbers = [slot.number for slot in slots]
    if len(set(numbers)) != len(numbers):
        raise SlotError(f"{path}: slot numbers must be unique")
    return slots


def _slot_from(row: object, path: Path) -> Slot:
    if not isinstance(row, dict):
        raise SlotError(f"{path}: each slot must be a table/object, not {row!r}")
    name = row.get("name")
    if not isinstance(name, str):
        raise SlotError(f"{path}: slot {row!r} needs a text 'name'")
    number = _integer(row, "number", None, path)
    item = _integer(row, "item", number, path)
    return Slot(
        number,
        item,
        name,
        _integer(row, "price", None, path),
        _integer(row, "stock", DEFAULT_STOCK, path),
    )


def _integer(row: dict[str, object], key: str, default: int | None, path: Path) -> int:
    value = row.get(key, default)
    if type(value) is not int:  # bool is an int subclass, and True is not a price
        raise SlotError(f"{path}: slot {row!r} needs an integer {key!r}")
    return value

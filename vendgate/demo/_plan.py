"""What the demo does and what it must find: machines, scenarios, expectations, the report.

Pure: no I/O. The runner fills in one ``Purchase`` per customer; ``problems`` says what is
wrong with it (nothing, when the money rules held); ``summary_table`` and ``report_json`` show
the result to a person and to a program.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from vendgate.boardsim import Slot
from vendgate.protocol import Money

CURRENCY = "NOK"
VAT_RATE = 1500  # 15 %, food and drink in Norway, in Vipps' hundredths of a percent
STOCK = 40  # per slot: enough for a long --purchases run


@dataclass(frozen=True)
class MachineSpec:
    machine_id: str
    name: str
    slots: tuple[Slot, ...]

    @property
    def max_price(self) -> int:
        """What the cloud reserves at a scan: the most expensive item."""
        return max(slot.price for slot in self.slots)


MACHINES = (
    MachineSpec(
        "m1",
        "Lobby",
        (
            Slot(1, 1, "Cola 0.5 l", 2500, STOCK),
            Slot(2, 2, "Water 0.5 l", 2000, STOCK),
            Slot(3, 3, "Sandwich", 3500, STOCK),
        ),
    ),
    MachineSpec(
        "m2",
        "Gym",
        (
            Slot(1, 1, "Energy drink", 3000, STOCK),
            Slot(2, 2, "Protein bar", 2500, STOCK),
            Slot(3, 3, "Water 0.5 l", 2000, STOCK),
        ),
    ),
    MachineSpec(
        "m3",
        "Station",
        (
            Slot(1, 1, "Coffee", 2800, STOCK),
            Slot(2, 2, "Crisps", 1500, STOCK),
            Slot(3, 3, "Chocolate bar", 3000, STOCK),
        ),
    ),
)


class Scenario(enum.StrEnum):
    NORMAL = "normal"  # scan, approve, choose, the item drops: pay its price
    JAM = "jam"  # the motor jams: nothing drops, nothing is charged
    TIMEOUT = "timeout"  # the customer walks away: the session times out, nothing is charged
    BUSY = "busy"  # a second customer scans a machine in use: refused, no payment

    @property
    def label(self) -> str:
        return {
            Scenario.NORMAL: "normal purchase",
            Scenario.JAM: "jammed motor",
            Scenario.TIMEOUT: "walk-away timeout",
            Scenario.BUSY: "busy scan",
        }[self]


@dataclass(frozen=True)
class Order:
    """One customer to send: at which machine, doing what, pressing which selection."""

    machine: MachineSpec
    scenario: Scenario
    selection: int | None = None

    @property
    def slot(self) -> Slot | None:
        return next((s for s in self.machine.slots if s.number == self.selection), None)


def scenario_orders(machines: Sequence[MachineSpec] = MACHINES) -> list[Order]:
    """The four scenarios: a purchase at the first machine, a jam at the second, and at the
    third a customer who walks away while another one scans (and finds it busy)."""
    first, second, third = machines[:3]
    return [
        Order(first, Scenario.NORMAL, first.slots[0].number),
        Order(second, Scenario.JAM, second.slots[0].number),
        Order(third, Scenario.TIMEOUT),
        Order(third, Scenario.BUSY),
    ]


def extra_orders(count: int, machines: Sequence[MachineSpec] = MACHINES) -> list[Order]:
    """``count`` normal purchases, spread over the machines and their selections in turn."""
    orders = []
    for n in range(count):
        machine = machines[n % len(machines)]
        slot = machine.slots[(n // len(machines)) % len(machine.slots)]
        orders.append(Order(machine, Scenario.NORMAL, slot.number))
    return orders


@dataclass
class Purchase:
    """What happened to one customer, as the JSON reports it. Amounts in minor units; the
    three amounts and ``receipt`` are read back from the Vipps simulator at the end."""

    machine_id: str
    scenario: str
    reference: str | None = None
    outcome: str | None = None  # the status page's final state, or the refusal (busy)
    item: int | None = None
    price: int | None = None
    authorized: int = 0
    captured: int = 0
    cancelled: int = 0
    receipt: bool = False
    error: str | None = None  # what went wrong on the way, if anything
    steps: list[str] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        del data["steps"]
        if data["error"] is None:
            del data["error"]
        return data


def problems(purchase: Purchase, max_price: int) -> list[str]:
    """Every way ``purchase`` breaks the money rules for its scenario (empty: all is well)."""
    if purchase.error is not None:
        return [purchase.error]
    if purchase.scenario == Scenario.BUSY:
        return _busy_problems(purchase)
    found = _reserved_problems(purchase, max_price)
    if purchase.scenario == Scenario.NORMAL:
        found += _paid_problems(purchase)
    else:
        found += _not_charged_problems(purchase)
    return found


def _busy_problems(p: Purchase) -> list[str]:
    found = [] if p.outcome == "busy" else [f"scan answered {p.outcome!r}, not 'busy'"]
    if p.reference is not None or p.authorized:
        found.append("a payment was created for a busy machine")
    return found


def _reserved_problems(p: Purchase, max_price: int) -> list[str]:
    if p.reference is None:
        return ["no payment was created"]
    if p.authorized != max_price:
        return [f"authorized {p.authorized}, expected the highest price {max_price}"]
    return []


def _paid_problems(p: Purchase) -> list[str]:
    found = [] if p.outcome == "paid" else [f"outcome {p.outcome!r}, expected 'paid'"]
    if p.price is None or p.captured != p.price:
        found.append(f"captured {p.captured}, expected the price {p.price}")
    if p.price is None or p.cancelled != p.authorized - p.price:
        found.append(f"cancelled {p.cancelled}, expected authorized - price")
    if not p.receipt:
        found.append("no receipt was posted")
    return found


def _not_charged_problems(p: Purchase) -> list[str]:
    found = [] if p.outcome == "not_charged" else [f"outcome {p.outcome!r}, not 'not_charged'"]
    if p.captured != 0:
        found.append(f"captured {p.captured} although nothing dropped")
    if p.cancelled != p.authorized:
        found.append(f"cancelled {p.cancelled}, expected everything ({p.authorized})")
    if p.receipt:
        found.append("a receipt was posted although nothing was sold")
    return found


# -- showing the result -----------------------------------------------------------------------


def money(minor: int | None) -> str:
    return "-" if minor is None else Money(minor, CURRENCY).format()


def settlement_text(p: Purchase) -> str:
    """The end of a purchase's progress line: what the simulator says happened to the money."""
    if p.scenario == Scenario.BUSY:
        return "no payment created" if p.reference is None else f"payment {p.reference} created!"
    receipt = "receipt posted" if p.receipt else "no receipt"
    return f"captured {money(p.captured)}, released {money(p.cancelled)}, {receipt}"


COLUMNS = (
    "machine", "scenario", "outcome", "item", "price", "authorized", "captured", "cancelled",
    "receipt", "check",
)  # fmt: skip


def _row(p: Purchase, found: Sequence[str]) -> tuple[str, ...]:
    no_payment = p.reference is None
    return (
        p.machine_id,
        Scenario(p.scenario).label,
        p.outcome or "-",
        "-" if p.item is None else str(p.item),
        money(p.price),
        "-" if no_payment else money(p.authorized),
        "-" if no_payment else money(p.captured),
        "-" if no_payment else money(p.cancelled),
        "-" if no_payment else ("yes" if p.receipt else "no"),
        "ok" if not found else "FAILED: " + "; ".join(found),
    )


def summary_table(checked: Sequence[tuple[Purchase, list[str]]]) -> str:
    rows = [COLUMNS, *(_row(p, found) for p, found in checked)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    return "\n".join(_line(row, widths) for row in rows)


def _line(row: Sequence[str], widths: Sequence[int]) -> str:
    cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=False))
    return "  ".join([*cells, row[-1]]).rstrip()


def report_json(checked: Sequence[tuple[Purchase, list[str]]]) -> str:
    ok = all(not found for _, found in checked)
    return json.dumps({"ok": ok, "purchases": [p.to_json() for p, _ in checked]})

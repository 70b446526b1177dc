"""Machines and their planogram: the minimum the purchase needs (the operator API comes later)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, exists, update
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from vendgate.cloud.clock import as_utc
from vendgate.cloud.db import Machine, Slot, VendSession
from vendgate.cloud.errors import InvalidPlanogram, NotFound, Unavailability
from vendgate.cloud.outbox import enqueue
from vendgate.cloud.vends import PriceMode
from vendgate.protocol.mqtt import (
    Config,
    Status,
    StatusState,
    Telemetry,
    TopicTree,
    validate_machine_id,
)

DEFAULT_VAT_RATE = 2500  # hundredths of a percent: 25 %, Norway's standard rate
MAX_VAT_RATE = 10_000

# Bounds of a planogram slot: MDB's item numbers are 16 bits and its widest money field a
# signed 32-bit count of minor units; VAT is in hundredths of a percent (Vipps' taxRate);
# the name fits the slots.name column (cloud/db/models.py) and is printed on receipts.
ITEM_RANGE = range(0, 0xFFFF + 1)
PRICE_RANGE = range(1, 2**31)
VAT_RANGE = range(0, 10_000 + 1)
NAME_MAX = 100
STOCK_RANGE = range(0, 2**31)
VERSIONS_MAX = 2000  # the machines.versions column

_MACHINES = Machine.metadata.tables["machines"]
_SLOTS = Slot.metadata.tables["slots"]
_VENDS = VendSession.metadata.tables["vend_sessions"]


@dataclass(frozen=True)
class Offer:
    """What a scan needs of a machine, read in one statement: can it sell now, and what.

    ``on_sale``: the enabled slots as ``(item, name, price, vat_rate)``, by item.
    """

    id: str
    name: str
    currency: str
    disabled: bool
    online: bool
    last_seen_at: datetime | None
    busy: bool  # a session is open there
    on_sale: tuple[tuple[int, str, int, int], ...]

    @property
    def max_price(self) -> int | None:
        return max((price for _, _, price, _ in self.on_sale), default=None)


_OFFER = (
    core_select(
        _MACHINES.c.id,
        _MACHINES.c.name,
        _MACHINES.c.currency,
        _MACHINES.c.disabled,
        _MACHINES.c.online,
        _MACHINES.c.last_seen_at,
        exists()
        .where(_VENDS.c.machine_id == _MACHINES.c.id, _VENDS.c.is_open.is_(True))
        .label("busy"),
        _SLOTS.c.item,
        _SLOTS.c.name.label("slot_name"),
        _SLOTS.c.price,
        _SLOTS.c.vat_rate,
    )
    .select_from(
        _MACHINES.outerjoin(
            _SLOTS, and_(_SLOTS.c.machine_id == _MACHINES.c.id, _SLOTS.c.enabled.is_(True))
        )
    )
    .where(_MACHINES.c.id == bindparam("machine_id"))
    .order_by(_SLOTS.c.item)
)


async def offer_of(db: AsyncSession, machine_id: str) -> Offer:
    """The machine as a scan sees it (``NotFound`` if there is none), in one round trip."""
    rows = (await (await db.connection()).execute(_OFFER, {"machine_id": machine_id})).all()
    if not rows:
        raise NotFound(f"no machine {machine_id!r}")
    first = rows[0]
    on_sale = tuple((r.item, r.slot_name, r.price, r.vat_rate) for r in rows if r.item is not None)
    return Offer(
        id=first.id,
        name=first.name,
        currency=first.currency,
        disabled=bool(first.disabled),
        online=bool(first.online),
        last_seen_at=first.last_seen_at,
        busy=bool(first.busy),
        on_sale=on_sale,
    )


@dataclass(frozen=True)
class SlotSpec:
    """One planogram entry; refuses (``InvalidPlanogram``) what could not be sold as given."""

    item: int
    name: str
    price: int
    vat_rate: int = 2500
    # Items left, if the operator counts them; a disabled slot is not sold (nor reserved for).
    stock: int | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        self._check_number("item", self.item, ITEM_RANGE, "(an MDB item number)")
        self._check_number("price", self.price, PRICE_RANGE, "minor units")
        self._check_number("vat_rate", self.vat_rate, VAT_RANGE, "hundredths of a percent")
        if self.stock is not None:
            self._check_number("stock", self.stock, STOCK_RANGE, "items")
        enabled: object = self.enabled  # typed bool, but given by whoever calls
        if not isinstance(enabled, bool):
            self._refuse("enabled", f"enabled must be true or false, got {enabled!r}")
        if not isinstance(self.name, str) or not self.name.strip():
            self._refuse("name", f"name must not be empty, got {self.name!r}")
        if len(self.name) > NAME_MAX:
            self._refuse("name", f"name must be at most {NAME_MAX} characters")

    def _check_number(self, field: str, value: object, bounds: range, unit: str) -> None:
        # bool is an int to Python, never to an operator.
        if isinstance(value, bool) or not isinstance(value, int) or value not in bounds:
            span = f"{bounds.start}..{bounds.stop - 1}"
            self._refuse(field, f"{field} must be {span} {unit}, got {value!r}")

    def _refuse(self, field: str, text: str) -> None:
        name = f" ({self.name})" if isinstance(self.name, str) and self.name.strip() else ""
        raise InvalidPlanogram(f"slot {self.item!r}{name}: {text}", field=field, item=self.item)


def validate_planogram(slots: Sequence[SlotSpec]) -> None:
    """Refuse an item number given twice (each slot checked itself when it was made)."""
    seen: set[int] = set()
    for spec in slots:
        if spec.item in seen:
            text = f"item {spec.item} appears more than once in the planogram"
            raise InvalidPlanogram(text, field="item", item=spec.item)
        seen.add(spec.item)


def unavailability(
    machine: Machine | Offer, now: datetime, heartbeat_window: float, busy: bool
) -> Unavailability | None:
    """Why a purchase cannot start at ``machine`` now, or None if it can."""
    if machine.disabled:
        return Unavailability.DISABLED
    last_seen = machine.last_seen_at
    if not machine.online or last_seen is None:
        return Unavailability.OFFLINE
    if now - as_utc(last_seen) > timedelta(seconds=heartbeat_window):
        return Unavailability.OFFLINE
    if busy:
        return Unavailability.BUSY
    return None


async def get_machine(db: AsyncSession, machine_id: str) -> Machine:
    machine = await db.get(Machine, machine_id)
    if machine is None:
        raise NotFound(f"no machine {machine_id!r}")
    return machine


async def slots_of(db: AsyncSession, machine_id: str) -> Sequence[Slot]:
    query = select(Slot).where(Slot.machine_id == machine_id).order_by(col(Slot.item))
    return (await db.exec(query)).all()


async def has_open_vend(db: AsyncSession, machine_id: str) -> bool:
    query = select(VendSession.id).where(
        VendSession.machine_id == machine_id, col(VendSession.is_open).is_(True)
    )
    return (await db.exec(query)).first() is not None


@dataclass(frozen=True)
class MachineSpec:
    """A machine as an operator describes it (``upsert_machine`` checks it before writing).

    ``price_mode``: ``planogram`` (the planogram prices every vend) or ``vmc`` (the machine's
    own prices are charged); ``vat_rate`` (hundredths of a percent) is the VAT of an item the
    planogram does not list.
    """

    machine_id: str
    name: str
    slots: Sequence[SlotSpec]
    currency: str = "NOK"
    callback_qr_id: str | None = None
    price_mode: str = PriceMode.PLANOGRAM
    vat_rate: int = DEFAULT_VAT_RATE
    location: str = ""


async def upsert_machine(
    db: AsyncSession, spec: MachineSpec, now: datetime, tree: TopicTree | None = None
) -> Machine:
    """Create or replace a machine and its planogram (tests, the demo, `cloud add-machine`).

    The new planogram goes to the machine (``cmd/config`` in the outbox, on ``tree``, default
    prefix if None); it gets it again on every connect.

    Raises ``MachineIdError`` or ``InvalidPlanogram`` before writing anything.
    """
    machine_id, slots, vat_rate = spec.machine_id, spec.slots, spec.vat_rate
    validate_machine_id(machine_id)
    validate_planogram(slots)
    mode = _price_mode(spec.price_mode)
    if type(vat_rate) is not int or not 0 <= vat_rate <= MAX_VAT_RATE:
        raise InvalidPlanogram(
            f"VAT rate must be 0..{MAX_VAT_RATE} (hundredths of a percent), got {vat_rate!r}",
            field="vat_rate",
            item=None,
        )
    machine = await db.get(Machine, machine_id) or Machine(
        id=machine_id, name=spec.name, created_at=now
    )
    machine.name, machine.currency = spec.name, spec.currency
    machine.callback_qr_id, machine.location = spec.callback_qr_id, spec.location
    machine.price_mode, machine.vat_rate = mode.value, vat_rate
    db.add(machine)
    for old in await slots_of(db, machine_id):
        await db.delete(old)
    await db.flush()
    for slot in slots:
        db.add(Slot(machine_id=machine_id, **slot.__dict__))
    enqueue(db, tree or TopicTree(), machine_id, planogram_config(machine, slots, now), now)
    return machine


def planogram_config(machine: Machine, slots: Sequence[Slot | SlotSpec], now: datetime) -> Config:
    """The ``cmd/config`` that gives the edge its price authority (docs/mqtt-contract.md).

    Disabled slots are left out: the edge refuses to vend an item its planogram lacks.
    """
    on_sale = sorted((s for s in slots if s.enabled), key=lambda s: s.item)
    planogram = [{"item": s.item, "price": s.price} for s in on_sale]
    settings = {"planogram": planogram, "price_mode": machine.price_mode}
    return Config.create(now=now, settings=settings)


async def send_planogram(
    db: AsyncSession, tree: TopicTree, machine: Machine, now: datetime
) -> None:
    """Put the machine's planogram in the outbox for it (on every ``hello``)."""
    slots = await slots_of(db, machine.id)
    enqueue(db, tree, machine.id, planogram_config(machine, slots, now), now)


def _price_mode(value: str) -> PriceMode:
    try:
        return PriceMode(value)
    except ValueError:
        modes = ", ".join(mode.value for mode in PriceMode)
        raise ValueError(f"price mode must be one of {modes}, got {value!r}") from None


def record_status(machine: Machine, status: Status, now: datetime) -> bool:
    """Apply a `status` message unless it is older than the one applied already.

    The last will is written when a connection is made, so its `ts` is older than that
    connection's `online`: within one boot the order is the status `seq` (online 2k, will 2k+1),
    or, from senders without `seq`, "offline wins". Across boots only the clock can tell.
    """
    if not _is_newer(machine, status):
        return False
    online = status.state is StatusState.ONLINE
    if machine.state_since is None or online != machine.online:
        machine.state_since = status.ts
    machine.online = online
    machine.versions = json.dumps(dict(status.versions), sort_keys=True)[:VERSIONS_MAX]
    machine.boot_id = status.boot_id
    # The newest time seen, not the will's older one: a stale copy of the `online` that the
    # will beat must not win back on its timestamp.
    if machine.status_at is None or status.ts > as_utc(machine.status_at):
        machine.status_at = status.ts
    machine.status_seq = status.seq
    machine.last_seen_at = now
    return True


async def seen(db: AsyncSession, machine_id: str, now: datetime) -> None:
    """A machine that is online was heard from now (its heartbeat), in one ``UPDATE``."""
    query = (
        update(_MACHINES)
        .where(_MACHINES.c.id == machine_id)
        .where(_MACHINES.c.online.is_(True))
        .values(last_seen_at=now)
    )
    await (await db.connection()).execute(query)


class Heartbeats:
    """``seen`` at most once per ``every`` seconds per machine from this process.

    The heartbeat window is minutes long and a purchase's events come seconds apart: writing
    ``last_seen_at`` for each of them was one statement in five of an event's transaction.
    A write that rolled back leaves it up to ``every`` seconds older, well inside the window.
    """

    LIMIT = 100_000  # machines remembered; past that, forget them all (each writes again)

    def __init__(self, every: float) -> None:
        self.every = timedelta(seconds=every)
        self._written: dict[str, datetime] = {}

    async def seen(self, db: AsyncSession, machine_id: str, now: datetime) -> None:
        last = self._written.get(machine_id)
        if last is not None and now - last < self.every:
            return
        await seen(db, machine_id, now)
        if len(self._written) >= self.LIMIT:
            self._written.clear()
        self._written[machine_id] = now


def record_telemetry(machine: Machine, telemetry: Telemetry, now: datetime) -> None:
    """The heartbeat: the vend board's state and the outbox depth, as an operator sees them."""
    machine.board_state = telemetry.board[:64]
    machine.outbox_depth = telemetry.outbox
    if machine.online:
        machine.last_seen_at = now


def _is_newer(machine: Machine, status: Status) -> bool:
    if machine.status_at is None:
        return True
    newer_ts = status.ts > as_utc(machine.status_at)
    if status.boot_id != machine.boot_id:
        return newer_ts
    if status.seq is not None and machine.status_seq is not None:
        return status.seq > machine.status_seq
    if status.state is StatusState.OFFLINE and machine.online:
        return True  # this boot's will (or clean stop) beats its `online`, whatever the ts
    return newer_ts

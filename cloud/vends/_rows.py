"""A session's rows as the core's ``Snapshot``, and the decided snapshot back into them.

The hot path of the cloud: every input reads a session and writes its decision. It is
written in SQLAlchemy Core, not the ORM: one locked ``SELECT`` of the session, its payment, its
machine's price rules, its lines and its price alerts (those two folded into strings by
subqueries: one round trip, not three), and an ``UPDATE`` of just the columns the decision
changed; a new line is appended, never the list rewritten. The ORM's identity map and unit of work
cost several times the query itself here (measured with py-spy under
``benchmarks/bench_cloud.py``: about half of the cloud's CPU before this module).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import String, bindparam, case, cast, delete, func, insert, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from vendgate.cloud.alerts import AlertKind
from vendgate.cloud.clock import as_utc
from vendgate.cloud.db import Alert, Machine, Payment, Slot, VendLine, VendSession, VendStep
from vendgate.protocol import Money

from ._core import Snapshot
from ._settlement import Line, PriceMode, Pricing
from ._states import VendState, is_open

_VEND = VendSession.metadata.tables["vend_sessions"]
_PAYMENT = Payment.metadata.tables["payments"]
_MACHINE = Machine.metadata.tables["machines"]
_LINES = VendLine.metadata.tables["vend_lines"]
_STEPS = VendStep.metadata.tables["vend_steps"]
_ALERTS = Alert.metadata.tables["alerts"]
_SLOTS = Slot.metadata.tables["slots"]

# The session's columns the core decides, by the snapshot's name for them (the same).
VEND_FIELDS = (
    "due_at",
    "lease_until",
    "authorized_amount",
    "authorized_at",
    "command_id",
    "command_sent_at",
    "command_expires_at",
    "settle_by",
    "started_at",
    "ended_at",
    "closed_at",
    "end_reason",
    "capture_amount",
    "cancel_amount",
    "captured_at",
    "cancelled_at",
    "verified_at",
    "receipt_at",
    "outcome",
    "failures",
    "last_error",
    "updated_at",
)
_VEND_TIMES = frozenset(n for n in VEND_FIELDS if n.endswith(("_at", "_by", "_until")))
# The payment's columns, by the snapshot's name for them.
PAYMENT_FIELDS = {
    "payment_state": "state",
    "redirect_url": "redirect_url",
    "payment_authorized": "authorized",
    "payment_captured": "captured",
    "payment_cancelled": "cancelled",
    "next_poll_at": "next_poll_at",
    "payment_hints": "hints",
    "payment_updated_at": "updated_at",
}
_PAYMENT_TIMES = frozenset({"next_poll_at", "payment_updated_at"})
# Lines and price alerts come back folded into one string each (string_agg on PostgreSQL,
# group_concat on SQLite): rows apart by _ROWS, fields by _FIELDS, in no order (each carries
# its position or id).
_ROWS, _FIELDS = "\x1e", "\x1f"
_LINE_TEXT = (
    cast(_LINES.c.position, String)
    + _FIELDS
    + cast(_LINES.c.item, String)
    + _FIELDS
    + cast(_LINES.c.price, String)
    + _FIELDS
    + case((_LINES.c.success, "1"), else_="0")
)
_LINES_OF = (
    select(func.aggregate_strings(_LINE_TEXT, _ROWS))
    .where(_LINES.c.vend_id == _VEND.c.id)
    .scalar_subquery()
)
_MISMATCHES_OF = (
    select(func.aggregate_strings(cast(_ALERTS.c.id, String) + _FIELDS + _ALERTS.c.detail, _ROWS))
    .where(_ALERTS.c.vend_id == _VEND.c.id)
    .where(_ALERTS.c.kind == str(AlertKind.PRICE_MISMATCH))
    .scalar_subquery()
)

# Payment columns are labelled: several share a name with the session's (state, updated_at).
_READ = (
    select(
        _VEND,
        *(_PAYMENT.c[column].label(f"p_{column}") for column in PAYMENT_FIELDS.values()),
        _PAYMENT.c.amount.label("p_amount"),
        _PAYMENT.c.customer_token.label("p_customer_token"),
        _MACHINE.c.price_mode.label("m_price_mode"),
        _MACHINE.c.vat_rate.label("m_vat_rate"),
        _LINES_OF.label("x_lines"),
        _MISMATCHES_OF.label("x_mismatches"),
    )
    .select_from(_VEND.join(_PAYMENT, _PAYMENT.c.vend_id == _VEND.c.id))
    .outerjoin(_MACHINE, _MACHINE.c.id == _VEND.c.machine_id)
    .where(_VEND.c.id == bindparam("vend_id"))
    # Locked on PostgreSQL until the decision is written: two inputs for one session (an
    # event and the reconciler) are decided one after the other, never from one old snapshot.
    # SQLite serializes writing transactions anyway (BEGIN IMMEDIATE).
    .with_for_update(of=_VEND)
)
_READ_SLOTS = select(_SLOTS.c.item, _SLOTS.c.name, _SLOTS.c.price, _SLOTS.c.vat_rate).where(
    _SLOTS.c.machine_id == bindparam("machine_id")
)


@dataclass(frozen=True)
class _Planogram:
    prices: Mapping[int, int]
    names: Mapping[int, tuple[str, int]]


@lru_cache(maxsize=4096)
def _planogram(snapshot_json: str) -> _Planogram:
    """The session's planogram (JSON, as the scan saw it); sessions at one machine share it."""
    return _from_slots(json.loads(snapshot_json))


def _from_slots(slots: Sequence[Sequence[Any]]) -> _Planogram:
    prices = {item: price for item, _, price, _ in slots}
    names = {item: (name, vat) for item, name, _, vat in slots}
    return _Planogram(prices, names)


def _utc(value: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes back: the core compares aware ones.
    return None if value is None else as_utc(value)


async def read_snapshot(db: AsyncSession, vend_id: str) -> Snapshot | None:
    """The session as the core sees it, locked for this transaction (None: no such session)."""
    await db.flush()  # Core does not autoflush: a session just added by the ORM (the scan)
    connection = await db.connection()
    row = (await connection.execute(_READ, {"vend_id": vend_id})).first()
    if row is None:
        return None
    state = VendState(row.state)
    if row.planogram:
        planogram = _planogram(row.planogram)
    else:  # a session opened before snapshots were kept
        slots = await connection.execute(_READ_SLOTS, {"machine_id": row.machine_id})
        planogram = _from_slots([tuple(slot) for slot in slots])
    lines = _lines(row.x_lines, row.currency)
    alerted = tuple(detail for _, detail in sorted(_rows(row.x_mismatches)))
    return _snapshot(row, state, planogram, lines, alerted)


def _rows(folded: str | None) -> list[tuple[int, str]]:
    """A folded column back into (position or id, the rest) pairs."""
    if not folded:
        return []
    pairs = (part.split(_FIELDS, 1) for part in folded.split(_ROWS))
    return [(int(first), rest) for first, rest in pairs]


def _lines(folded: str | None, currency: str) -> tuple[Line, ...]:
    lines = []
    for _, rest in sorted(_rows(folded)):
        item, price, success = rest.split(_FIELDS)
        lines.append(Line(int(item), Money(int(price), currency), success == "1"))
    return tuple(lines)


def _snapshot(
    row: Any,  # a Row of _READ
    state: VendState,
    planogram: _Planogram,
    lines: tuple[Line, ...],
    alerted: tuple[str, ...],
) -> Snapshot:
    values = row._mapping
    vend: dict[str, Any] = {
        n: _utc(values[n]) if n in _VEND_TIMES else values[n] for n in VEND_FIELDS
    }
    payment: dict[str, Any] = {
        name: _utc(values[f"p_{column}"]) if name in _PAYMENT_TIMES else values[f"p_{column}"]
        for name, column in PAYMENT_FIELDS.items()
    }
    mode = PriceMode(row.m_price_mode) if row.m_price_mode is not None else PriceMode.PLANOGRAM
    return Snapshot(
        id=row.id,
        machine_id=row.machine_id,
        currency=row.currency,
        state=state,
        reserved=row.p_amount,
        created_at=as_utc(row.created_at),
        pricing=Pricing(mode, planogram.prices),
        names=planogram.names,
        machine_vat=row.m_vat_rate if row.m_vat_rate is not None else 0,
        status_token=row.status_token,
        customer_token=row.p_customer_token,
        lines=lines,
        alerted_mismatches=alerted,
        **vend,
        **payment,
    )


async def insert_opened(
    db: AsyncSession, session: Mapping[str, Any], payment: Mapping[str, Any], step: Any
) -> None:
    """A new session's three rows (session, payment, first step), as one statement on
    PostgreSQL (foreign keys are checked at its end)."""
    await _execute(
        await db.connection(),
        [
            insert(_VEND).values(session),
            insert(_PAYMENT).values(payment),
            insert(_STEPS).values(step),
        ],
    )


async def _execute(connection: Any, writes: Sequence[Any]) -> None:
    """``writes`` in one round trip on PostgreSQL: the others joined as data-modifying CTEs of
    the last (they touch different rows, so their order does not matter); one each on SQLite."""
    if connection.dialect.name != "postgresql":
        for write in writes:
            await connection.execute(write)
        return
    *joined, last = writes
    for number, write in enumerate(joined):
        last = last.add_cte(write.cte(f"w{number}"))
    await connection.execute(last)


async def write_decision(
    db: AsyncSession,
    before: Snapshot,
    after: Snapshot,
    at: datetime,
    steps: Sequence[tuple[str, str]],
) -> None:
    """Write what the decision changed (only the changed columns) and its log lines.

    On PostgreSQL that is one statement (``_execute``): one round trip where there were up to
    four (session, payment, lines, steps).
    """
    connection = await db.connection()
    writes = await _changes(connection, before, after)
    # One INSERT per row: SQLAlchemy caches the compiled form of a one-row VALUES, never
    # that of a multi-row one (compiling those each time was a tenth of the cloud's CPU).
    writes.extend(
        insert(_STEPS).values(vend_id=after.id, at=at, step=step, detail=detail)
        for step, detail in steps
    )
    if writes:
        await _execute(connection, writes)


async def _changes(connection: Any, before: Snapshot, after: Snapshot) -> list[Any]:
    """The statements that write ``after`` over ``before`` (none when nothing changed)."""
    if after == before:
        return []
    writes: list[Any] = []
    vend = {n: getattr(after, n) for n in VEND_FIELDS if getattr(after, n) != getattr(before, n)}
    if after.state != before.state:
        vend["state"], vend["is_open"] = str(after.state), is_open(after.state)
    if vend:
        writes.append(update(_VEND).where(_VEND.c.id == after.id).values(vend))
    payment = {
        column: getattr(after, name)
        for name, column in PAYMENT_FIELDS.items()
        if getattr(after, name) != getattr(before, name)
    }
    if payment:
        writes.append(update(_PAYMENT).where(_PAYMENT.c.vend_id == after.id).values(payment))
    if after.lines != before.lines:
        start = len(before.lines)
        if after.lines[:start] != before.lines:
            # The `ended` list correcting what `dispensed` said: rewrite (rare; on its own,
            # so the new lines never meet the old ones in one statement).
            await connection.execute(delete(_LINES).where(_LINES.c.vend_id == after.id))
            start = 0
        writes.extend(
            insert(_LINES).values(
                vend_id=after.id,
                position=position,
                item=line.item,
                price=line.price.value,
                success=line.success,
            )
            for position, line in enumerate(after.lines[start:], start)
        )
    return writes


__all__ = ["PAYMENT_FIELDS", "VEND_FIELDS", "insert_opened", "read_snapshot", "write_decision"]

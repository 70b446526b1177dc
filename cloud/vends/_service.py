"""``VendService``: the one owner of a vend session's rows and of the transactions that change them.

``apply(vend_id, input)`` reads the session as a snapshot, asks the core, and writes the new
state with every effect that is a row (steps, alerts, outbox commands) in ONE transaction; the
Vipps calls the decision asks for are carried out only after that commits (``run_claimed``),
and their answers come back through ``apply`` as inputs. No transaction spans a network call.
The adapters (customer routes, the Vipps webhook, the MQTT handlers, the reconciler) only turn
what they receive into inputs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from vendgate.cloud.alerts import raise_alert
from vendgate.cloud.db import (
    SessionFactory,
    VendLine,
    VendSession,
    transaction,
)
from vendgate.cloud.faults import AFTER_CAPTURE, AFTER_VIPPS_CALL_BEFORE_COMMIT, Faults, no_faults
from vendgate.cloud.outbox import Outgoing, enqueue, rearm
from vendgate.cloud.settings import TimingSettings
from vendgate.protocol import Clock, Money
from vendgate.protocol.mqtt import Authorized, Cancel, Command, TopicTree

from ._core import (
    Alert,
    CallVipps,
    CommandKind,
    Decision,
    Input,
    Level,
    LogStep,
    Note,
    PaymentHinted,
    ResendCommand,
    SendCommand,
    Snapshot,
    StepDone,
    VippsOp,
    advance,
    claimable,
    decide,
    hint_can_matter,
)
from ._executor import VippsExecutor
from ._rows import insert_opened, read_snapshot, write_decision
from ._settlement import Line
from ._states import VendState

log = logging.getLogger(__name__)

# Where a transaction keeps the commands it wrote for ``send`` (``Session.info``).
_WRITTEN = "vendgate.written_commands"

# Sessions whose last state is kept in memory (a few MB at most).
KNOWN_SESSIONS = 50_000

_LEVELS = {Level.INFO: logging.INFO, Level.WARNING: logging.WARNING, Level.ERROR: logging.ERROR}


def new_vend_id() -> str:
    """35 characters of ``[a-z0-9-]``: also the Vipps reference (8-50 characters)."""
    return f"vs-{uuid.uuid4().hex}"


async def open_vend(
    db: AsyncSession,
    machine_id: str,
    currency: str,
    on_sale: Sequence[tuple[int, str, int, int]],
    now: datetime,
    timing: TimingSettings,
    *,
    mode: str = "redirect",
    customer_token: str | None = None,
) -> str:
    """A new session in `creating`, claimed by the caller (it creates the payment next); its id.

    ``on_sale``: the machine's enabled slots, ``(item, name, price, vat_rate)``; the session
    reserves the highest price and keeps them as its planogram. Raises IntegrityError if the
    machine already has an open session (the database's partial unique index).
    """
    max_price = max(price for _, _, price, _ in on_sale)
    vend_id = new_vend_id()
    session = {
        "id": vend_id,
        "machine_id": machine_id,
        "planogram": json.dumps([list(slot) for slot in on_sale]),
        "state": str(VendState.CREATING),
        "is_open": True,
        "mode": mode,
        "status_token": secrets.token_urlsafe(24),
        "currency": currency,
        "max_amount": max_price,
        "created_at": now,
        "updated_at": now,
        "due_at": now,
        "lease_until": now + timedelta(seconds=timing.work_lease),
        "authorized_amount": 0,
        "failures": 0,
    }
    payment = {
        "reference": vend_id,
        "vend_id": vend_id,
        "amount": max_price,
        "currency": currency,
        "customer_token": customer_token,
        "state": None,
        "authorized": 0,
        "captured": 0,
        "cancelled": 0,
        "hints": 0,
        "updated_at": now,
    }
    step = {
        "vend_id": vend_id,
        "at": now,
        "step": "opened",
        "detail": f"{mode}, max {Money(max_price, currency)}",
    }
    await insert_opened(db, session, payment, step)
    return vend_id


async def lines_of(db: AsyncSession, vend: VendSession) -> list[Line]:
    """The attempts reported so far; stored lines are all in the session's currency."""
    query = select(VendLine).where(VendLine.vend_id == vend.id).order_by(col(VendLine.position))
    rows: Sequence[VendLine] = (await db.exec(query)).all()
    return [Line(r.item, Money(r.price, vend.currency), r.success) for r in rows]


class VendService:
    """Applies inputs to sessions: the core decides, this writes, the executor calls Vipps."""

    def __init__(
        self,
        sessions: SessionFactory,
        executor: VippsExecutor,
        *,
        clock: Clock,
        timing: TimingSettings,
        tree: TopicTree,
        faults: Faults = no_faults,
        on_command: Callable[[], None] = lambda: None,
        on_work: Callable[[], None] = lambda: None,
        send: Callable[[Sequence[Outgoing]], None] | None = None,
        inline_work: bool = False,
        concurrency: int = 16,
    ) -> None:
        self.sessions = sessions
        self.executor = executor
        self.clock = clock
        self.timing = timing
        self.tree = tree
        self.faults = faults
        self.on_command = on_command  # a command went to the outbox: publish it now
        self.on_work = on_work  # a session is due now and nobody took it: wake the reconciler
        # Publishes commands at once, after the commit that wrote them (None: the publisher
        # sends them, woken by ``on_command``).
        self.send = send
        # Take sessions made due by an input and work them at once, at most ``concurrency``
        # at a time (then the reconciler's pass gets them). Off: inputs only make work due.
        self.inline_work = inline_work
        self.concurrency = concurrency
        self._working: set[asyncio.Task[Decision]] = set()
        # The state each session was last seen in here: a webhook that can change nothing in it
        # costs no transaction (most of them: CREATED, CAPTURED, CANCELLED).
        self._known: OrderedDict[str, VendState] = OrderedDict()

    async def apply(self, vend_id: str, event: Input, *, work: bool = False) -> Decision | None:
        """``event`` applied to the session in its own transaction (None: no such session).

        ``work``: if the session is due now and free, this replica takes it in that same
        transaction and works it at once, in a task of its own (see ``committed``).
        """
        async with transaction(self.sessions) as db:
            decision = await self.apply_in(db, vend_id, event, work=work)
        self.committed(decision, db)
        return decision

    async def apply_in(
        self,
        db: AsyncSession,
        vend_id: str,
        event: Input,
        *,
        work: bool = False,
        machine_id: str | None = None,
    ) -> Decision | None:
        """The same inside the caller's transaction (an MQTT event and its dedup row); the
        caller calls ``committed`` with the decision once that transaction committed.

        ``machine_id``: the machine the event came from; a session of another one is not
        touched (None, as for no session at all).
        """
        snapshot = await read_snapshot(db, vend_id)
        if snapshot is None or machine_id not in (None, snapshot.machine_id):
            return None
        now = self.clock.now()
        decision = decide(snapshot, event, now, self.timing)
        if work and self._has_room() and claimable(decision.snapshot, now):
            lease = now + timedelta(seconds=self.timing.work_lease)
            taken = dataclasses.replace(decision.snapshot, lease_until=lease)
            then = advance(taken, None, now, self.timing)
            effects = decision.effects + then.effects
            decision = Decision(then.snapshot, effects, True, taken=True)
        await self._write(db, snapshot, decision, now)
        return decision

    async def hint(self, vend_id: str, hint: PaymentHinted) -> bool:
        """A webhook's hint, applied unless this replica knows it can change nothing (states
        only move forward). A read it makes due is made at once. False: no such session."""
        known = self._known.get(vend_id)
        if known is not None and not hint_can_matter(known, hint.name):
            return True
        return await self.apply(vend_id, hint, work=True) is not None

    def _remember(self, s: Snapshot) -> None:
        self._known[s.id] = s.state
        self._known.move_to_end(s.id)
        if len(self._known) > KNOWN_SESSIONS:
            self._known.popitem(last=False)

    def committed(self, decision: Decision | None, db: AsyncSession) -> None:
        """After ``db``'s transaction wrote ``decision``: its commands go out, and a session it
        took is worked now (the reconciler only picks up what nobody took)."""
        self._send_written(db)
        if decision is None:
            return
        self._remember(decision.snapshot)
        if any(isinstance(e, ResendCommand) for e in decision.effects):
            self.on_command()  # a re-armed row: the publisher sends it
        if decision.taken and decision.calls():
            task = asyncio.create_task(self.work_on(decision))
            self._working.add(task)
            task.add_done_callback(self._working.discard)
        elif not decision.taken and claimable(decision.snapshot, self.clock.now()):
            self.on_work()  # due now, and not taken here (no room, or someone holds it)

    def _send_written(self, db: AsyncSession) -> None:
        written = db.info.pop(_WRITTEN, None)
        if written and self.send is not None:
            self.send(written)

    def _has_room(self) -> bool:
        return self.inline_work and len(self._working) < self.concurrency

    async def aclose(self) -> None:
        """Stop the sessions taken here; their leases run out and the reconciler goes on."""
        for task in list(self._working):
            task.cancel()
        await asyncio.gather(*self._working, return_exceptions=True)

    async def run_claimed(self, vend_id: str, *, scan: bool = False) -> Decision | None:
        """Run every action due now; the caller holds the session's lease, released here.

        ``scan``: the customer waits for this, so the create gets one short attempt.
        """
        decision = await self._advance(vend_id, None)
        return None if decision is None else await self.work_on(decision, scan=scan)

    async def advance_in(
        self, db: AsyncSession, vend_id: str, result: Input | None = None
    ) -> Decision | None:
        """``advance`` in the caller's transaction, for a session the caller holds: ``result``
        (a Vipps answer), then the looks. The scan uses it to open a session and decide its
        create in one transaction."""
        snapshot = await read_snapshot(db, vend_id)
        if snapshot is None:
            return None
        now = self.clock.now()
        decision = advance(snapshot, result, now, self.timing)
        await self._write(db, snapshot, decision, now)
        return decision

    async def _advance(self, vend_id: str, result: Input | None) -> Decision | None:
        async with transaction(self.sessions) as db:
            decision = await self.advance_in(db, vend_id, result)
        self.committed(decision, db)
        return decision

    async def work_on(self, decision: Decision, *, scan: bool = False) -> Decision:
        """Carry out a held session's Vipps calls, one transaction per answer, until the
        decision releases it. On a failure the lease stays: the session is looked at again
        when it runs out, as after a crash."""
        vend_id = decision.snapshot.id
        self._remember(decision.snapshot)
        while calls := decision.calls():
            result = await self.executor.execute(decision.snapshot, calls[0], scan=scan)
            captured = calls[0].operation is VippsOp.CAPTURE and isinstance(result, StepDone)
            if captured:
                self.faults(AFTER_VIPPS_CALL_BEFORE_COMMIT)
            after = await self._advance(vend_id, result)
            if captured:
                self.faults(AFTER_CAPTURE)
            if after is None:
                break
            decision = after
        return decision

    async def _write(
        self, db: AsyncSession, before: Snapshot, decision: Decision, now: datetime
    ) -> None:
        after = decision.snapshot
        steps = [(e.step, e.detail) for e in decision.effects if isinstance(e, LogStep)]
        for effect in decision.effects:
            if isinstance(effect, ResendCommand) and await rearm(db, effect.command_id):
                steps.append(("command_resent", effect.command_id))
            else:
                self._record(db, after, effect, now)
        await write_decision(db, before, after, now, steps)

    def _record(self, db: AsyncSession, s: Snapshot, effect: object, now: datetime) -> None:
        if isinstance(effect, Alert):
            raise_alert(db, effect.kind, now, effect.detail, machine_id=s.machine_id, vend_id=s.id)
        elif isinstance(effect, SendCommand):
            command = _command(s, effect, now)
            if self.send is None:
                enqueue(db, self.tree, s.machine_id, command, now)
                self.on_command()  # the publisher sends it (early: it looks after the commit)
            else:
                row = enqueue(db, self.tree, s.machine_id, command, now, sent_at=now)
                db.info.setdefault(_WRITTEN, []).append(Outgoing(row.id, row.topic, row.payload))
        elif isinstance(effect, Note):
            log.log(_LEVELS[effect.level], "%s", effect.text)
        # LogStep: written together above. CallVipps: carried out after the commit (work_on).


def _command(s: Snapshot, effect: SendCommand, now: datetime) -> Command:
    if effect.kind is CommandKind.AUTHORIZED:
        assert effect.amount is not None
        assert effect.expires_at is not None
        return Authorized.create(
            now=now,
            vend_id=s.id,
            amount=effect.amount,
            expires_at=effect.expires_at,
            message_id=effect.command_id,
        )
    return Cancel.create(now=now, vend_id=s.id, message_id=effect.command_id)


__all__ = ["CallVipps", "VendService", "lines_of", "new_vend_id", "open_vend"]

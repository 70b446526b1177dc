"""The edge agent's pure core: ``handle(input, now) -> actions``. No I/O, no clock.

It decides everything the agent does: which ``authorized`` starts a session and which is
rejected (and why), what each reader event reports, what the outbox holds until the cloud's
``ack``, what to say on connect. Every event it emits is part of the step's ``Persist``, which the
shell makes durable before it publishes anything, so a crash at any point loses no event.

Rules worth knowing (docs/edge-agent.md has them all):

- a vend id is acted on once: a repeated ``authorized`` re-publishes that vend's latest outcome
  (``started`` or ``ended``), or, if it never started, answers ``rejected``/``duplicate``;
- the vend is recorded (phase ``pending``) before BEGIN SESSION is asked of the reader, so even a
  crash right after cannot lead to a second session for the same vend id;
- a vend left open by a crash is ended on the next boot (``board_reset``: the reader restarted),
  an approved item without a result is reported as failed: never charge what may not have dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar

from vendgate.edge._actions import (
    Action,
    ApplySettings,
    BeginSession,
    CancelSession,
    Log,
    Publish,
    SetWill,
)
from vendgate.edge._inputs import (
    BeginFailed,
    Board,
    Booted,
    CommandArrived,
    Connected,
    Disconnected,
    Input,
    ResendDue,
    SessionClosed,
    SessionOpened,
    ShuttingDown,
    TelemetryDue,
    VendApproved,
    VendResult,
)
from vendgate.edge._records import Approval, OutboxEvent, Snapshot, VendPhase, VendRecord
from vendgate.edge._settings import Settings
from vendgate.edge._step import Step
from vendgate.protocol import Money
from vendgate.protocol.mqtt import (
    MESSAGE_TYPES,
    Ack,
    Authorized,
    Cancel,
    Config,
    Dispensed,
    DispensedItem,
    Ended,
    EndReason,
    Event,
    Hello,
    MessageError,
    Rejected,
    RejectReason,
    Started,
    Status,
    StatusState,
    Telemetry,
)

__all__ = ["AgentCore"]

# Reader states in which a session is running: a new one would be "busy", not "board down".
_IN_SESSION = frozenset({"session_idle", "vend"})


class AgentCore:
    """The agent's decisions and state, rebuilt from a store ``Snapshot`` on every start.

    Feed ``Booted`` first, then anything, in the order it happened.
    """

    def __init__(
        self,
        *,
        machine_id: str,
        currency: str,
        snapshot: Snapshot | None = None,
        defaults: Settings | None = None,
        begin_timeout_s: float = 15.0,
    ) -> None:
        snapshot = snapshot or Snapshot()
        self.machine_id = machine_id
        self.currency = currency
        self.begin_timeout = timedelta(seconds=begin_timeout_s)
        self.boot_id: str | None = None
        self.versions: dict[str, str] = {}
        self.connected = False
        self._defaults = defaults or Settings()
        self.settings, _, self._settings_problems = self._defaults.updated(snapshot.settings)
        self._pending: dict[str, OutboxEvent] = {e.id: e for e in snapshot.pending}
        self._sent_at: dict[str, datetime] = {}
        self._vends: dict[str, VendRecord] = {v.vend_id: v for v in snapshot.vends}
        self._last_seq = max([snapshot.last_seq, *(e.seq for e in snapshot.pending)])
        self._current: str | None = None

    # -- what the shell and the tests may look at ---------------------------------------------

    @property
    def outbox(self) -> tuple[OutboxEvent, ...]:
        """Events not acknowledged yet, in seq order."""
        return tuple(self._pending.values())

    @property
    def open_vends(self) -> tuple[str, ...]:
        return tuple(v.vend_id for v in self._vends.values() if v.phase.is_active)

    def vend(self, vend_id: str) -> VendRecord | None:
        return self._vends.get(vend_id)

    # -- the one entry point ------------------------------------------------------------------

    def handle(self, event: Input, now: datetime) -> list[Action]:
        step = Step(now)
        self._handlers[type(event)](self, step, event)
        return step.actions()

    # -- lifecycle ----------------------------------------------------------------------------

    def _booted(self, step: Step, event: Booted) -> None:
        self.boot_id, self.versions = event.boot_id, dict(event.versions)
        step.boot_id = event.boot_id
        step.log(
            Log.info(
                "agent.boot",
                boot_id=event.boot_id,
                outbox=len(self._pending),
                unfinished=",".join(self.open_vends) or "-",
            )
        )
        for problem in self._settings_problems:
            step.log(Log.warning("config.stored_setting_ignored", problem=problem))
        for vend in [v for v in self._vends.values() if v.phase.is_active]:
            self._finish_after_restart(step, vend)
        step.do(SetWill(self._status(step.now, StatusState.OFFLINE).encode()))
        step.do(ApplySettings(self.settings))

    def _finish_after_restart(self, step: Step, vend: VendRecord) -> None:
        # The reader restarted with this process, so whatever session the board had is gone.
        if vend.phase is VendPhase.PENDING:
            step.log(Log.warning("vend.abandoned_at_restart", vend_id=vend.vend_id))
            self._reject(step, vend.vend_id, vend.amount, RejectReason.BOARD_DOWN)
        else:
            step.log(Log.warning("vend.interrupted_by_restart", vend_id=vend.vend_id))
            self._end_session(step, vend, EndReason.BOARD_RESET)

    def _connected(self, step: Step, event: Connected) -> None:
        boot_id = self._require_boot()
        self.connected = True
        step.log(
            Log.info(
                "mqtt.connected", session_present=event.session_present, outbox=len(self._pending)
            )
        )
        step.do(Publish(Status.wire_name(), self._status(step.now, StatusState.ONLINE).encode()))
        hello = Hello.create(
            now=step.now,
            seq=self._next_seq(step),
            boot_id=boot_id,
            open_vends=self.open_vends,
            outbox=len(self._pending),
        )
        step.do(Publish(hello.wire_name(), hello.encode(), hello.id))
        self._resend(step, everything=True)

    def _disconnected(self, step: Step, event: Disconnected) -> None:
        self.connected = False
        step.log(Log.warning("mqtt.disconnected", reason=event.reason, outbox=len(self._pending)))

    def _shutting_down(self, step: Step, event: ShuttingDown) -> None:
        step.log(Log.info("agent.stop", outbox=len(self._pending)))
        if self.connected:
            status = self._status(step.now, StatusState.OFFLINE)
            step.do(Publish(status.wire_name(), status.encode()))

    def _status(self, now: datetime, state: StatusState) -> Status:
        return Status.create(
            now=now, state=state, boot_id=self._require_boot(), versions=self.versions
        )

    def _require_boot(self) -> str:
        if self.boot_id is None:
            raise RuntimeError("the core must be fed Booted before anything else")
        return self.boot_id

    # -- commands -----------------------------------------------------------------------------

    def _command(self, step: Step, event: CommandArrived) -> None:
        if event.retained:
            # Commands are never retained; one that is could replay forever.
            step.log(Log.warning("command.retained_dropped", command=event.name))
            return
        if event.machine_id is not None and event.machine_id != self.machine_id:
            step.log(Log.warning("command.wrong_machine", target=event.machine_id))
            return
        message_type = MESSAGE_TYPES.get(f"cmd/{event.name}")
        if message_type is None:
            step.log(Log.warning("command.unknown", command=event.name))
            return
        try:
            message = message_type.decode(event.payload)
        except MessageError as error:
            step.log(Log.warning("command.malformed", command=event.name, error=str(error)))
            return
        if isinstance(message, Authorized):
            self._authorized(step, message, event.board)
        elif isinstance(message, Cancel):
            self._cancel(step, message)
        elif isinstance(message, Ack):
            self._ack(step, message)
        elif isinstance(message, Config):
            self._config(step, message)

    def _authorized(self, step: Step, command: Authorized, board: Board) -> None:
        known = self._vends.get(command.vend_id)
        if known is not None:
            self._repeated(step, known)
            return
        refusal = self._refusal(step.now, command, board)
        if refusal is not None:
            self._reject(step, command.vend_id, command.amount, refusal)
            return
        self._current = command.vend_id
        self._save(step, VendRecord(command.vend_id, VendPhase.PENDING, command.amount, step.now))
        step.do(BeginSession(command.vend_id, command.amount.value))
        step.log(Log.info("vend.begin", vend_id=command.vend_id, amount=command.amount.format()))

    def _refusal(self, now: datetime, command: Authorized, board: Board) -> RejectReason | None:
        if command.is_expired(now):
            return RejectReason.EXPIRED
        if command.amount.currency != self.currency or command.amount.value == 0:
            return RejectReason.INVALID
        if self._current is not None:
            return RejectReason.BUSY
        if board.can_begin_session:
            return None
        return RejectReason.BUSY if board.state in _IN_SESSION else RejectReason.BOARD_DOWN

    def _repeated(self, step: Step, vend: VendRecord) -> None:
        """The same vend id again: never act twice; tell the cloud where the vend stands."""
        if vend.phase is VendPhase.PENDING:
            step.log(Log.info("vend.duplicate_while_starting", vend_id=vend.vend_id))
        elif vend.phase is VendPhase.REJECTED:
            step.log(Log.info("vend.duplicate_of_rejected", vend_id=vend.vend_id))
            self._emit(
                step,
                vend.vend_id,
                lambda seq: Rejected.create(
                    now=step.now, seq=seq, vend_id=vend.vend_id, reason=RejectReason.DUPLICATE
                ),
            )
        elif vend.outcome is not None:
            step.log(Log.info("vend.duplicate", vend_id=vend.vend_id, reported=vend.outcome.name))
            self._publish_event(step, vend.outcome)

    def _cancel(self, step: Step, command: Cancel) -> None:
        vend = self._vends.get(command.vend_id)
        if vend is None:
            # Cancelled before its authorization arrived (or after we forgot it): record it as
            # over, so a late ``authorized`` for it cannot start a session.
            step.log(Log.info("vend.cancelled_before_start", vend_id=command.vend_id))
            unknown = VendRecord(command.vend_id, VendPhase.PENDING, self._zero(), step.now)
            self._end_session(step, unknown, EndReason.CANCELLED)
        elif vend.phase is VendPhase.PENDING:
            step.do(CancelSession(vend.vend_id))
            step.log(Log.info("vend.cancelled_while_starting", vend_id=vend.vend_id))
            self._end_session(step, vend, EndReason.CANCELLED)
        elif vend.phase is VendPhase.OPEN:
            step.do(CancelSession(vend.vend_id))
            step.log(Log.info("vend.cancel_requested", vend_id=vend.vend_id))
        else:
            step.log(Log.info("vend.cancel_after_end", vend_id=vend.vend_id, phase=vend.phase))

    def _ack(self, step: Step, command: Ack) -> None:
        named = dict.fromkeys(command.events)  # the same id twice must not be removed twice
        known = [event_id for event_id in named if event_id in self._pending]
        for event_id in known:
            event = self._pending.pop(event_id)
            self._sent_at.pop(event_id, None)
            step.acked.append(event_id)
            step.log(
                Log.debug("event.acked", event_id=event_id, vend_id=event.vend_id, name=event.name)
            )
        step.log(
            Log.info(
                "outbox.acked",
                acked=len(known),
                unknown=len(named) - len(known),
                outbox=len(self._pending),
            )
        )

    def _config(self, step: Step, command: Config) -> None:
        self.settings, applied, problems = self.settings.updated(command.settings)
        for problem in problems:
            step.log(Log.warning("config.setting_refused", problem=problem))
        if applied:
            step.settings.update(applied)
            step.do(ApplySettings(self.settings))
            step.log(Log.info("config.applied", **applied))

    # -- the reader ---------------------------------------------------------------------------

    def _begin_failed(self, step: Step, event: BeginFailed) -> None:
        vend = self._current_vend(VendPhase.PENDING)
        if vend is None or vend.vend_id != event.vend_id:
            step.log(Log.warning("vend.begin_failed_stale", vend_id=event.vend_id))
            return
        in_session = event.board.state in _IN_SESSION
        reason = RejectReason.BUSY if in_session else RejectReason.BOARD_DOWN
        step.log(Log.warning("vend.begin_failed", vend_id=vend.vend_id, error=event.error))
        self._current = None
        self._reject(step, vend.vend_id, vend.amount, reason)

    def _session_opened(self, step: Step, event: SessionOpened) -> None:
        vend = self._current_vend(VendPhase.PENDING)
        if vend is None:
            # A session nobody here asked for (or one we already gave up on): end it.
            step.log(Log.warning("session.unexpected", funds=event.funds))
            step.do(CancelSession(None))
            return
        started = self._emit(
            step,
            vend.vend_id,
            lambda seq: Started.create(
                now=step.now, seq=seq, vend_id=vend.vend_id, funds=vend.amount
            ),
        )
        self._save(step, _replace(vend, phase=VendPhase.OPEN, updated=step.now, outcome=started))
        step.log(Log.info("vend.started", vend_id=vend.vend_id, funds=event.funds))

    def _vend_approved(self, step: Step, event: VendApproved) -> None:
        vend = self._current_vend(VendPhase.OPEN)
        if vend is None:
            step.log(Log.warning("vend.approved_outside_session", item=event.item))
            return
        approval = Approval(event.item, Money(event.price, vend.amount.currency))
        self._save(step, _replace(vend, in_flight=approval, updated=step.now))
        step.log(Log.info("vend.approved", vend_id=vend.vend_id, item=event.item))

    def _vend_result(self, step: Step, event: VendResult) -> None:
        vend = self._current_vend(VendPhase.OPEN)
        if vend is None:
            step.log(Log.warning("vend.result_outside_session", item=event.item))
            return
        price = Money(event.price, vend.amount.currency)
        self._dispensed(
            step, vend, DispensedItem(item=event.item, price=price, success=event.success)
        )

    def _dispensed(self, step: Step, vend: VendRecord, line: DispensedItem) -> VendRecord:
        self._emit(
            step,
            vend.vend_id,
            lambda seq: Dispensed.create(
                now=step.now,
                seq=seq,
                vend_id=vend.vend_id,
                item=line.item,
                price=line.price,
                success=line.success,
            ),
        )
        lines = (*vend.lines, line)
        updated = _replace(vend, lines=lines, in_flight=None, updated=step.now)
        self._save(step, updated)
        step.log(
            Log.info(
                "vend.dispensed",
                vend_id=vend.vend_id,
                item=line.item,
                price=line.price.format(),
                success=line.success,
            )
        )
        return updated

    def _session_closed(self, step: Step, event: SessionClosed) -> None:
        vend = self._vends.get(self._current) if self._current else None
        if vend is None:
            step.log(Log.info("session.closed_without_vend", reason=event.reason))
        elif vend.phase is VendPhase.PENDING:
            step.log(Log.warning("vend.never_started", vend_id=vend.vend_id, reason=event.reason))
            self._reject(step, vend.vend_id, vend.amount, RejectReason.BOARD_DOWN)
        else:
            self._end_session(step, vend, event.reason)

    def _end_session(self, step: Step, vend: VendRecord, reason: EndReason) -> None:
        if vend.in_flight is not None:
            # The board never said whether the approved item dropped: report it as failed,
            # because charging for an item that may not have been delivered is never allowed.
            step.log(Log.warning("vend.outcome_unknown", vend_id=vend.vend_id))
            failed = DispensedItem(
                item=vend.in_flight.item, price=vend.in_flight.price, success=False
            )
            vend = self._dispensed(step, vend, failed)
        ended = self._emit(
            step,
            vend.vend_id,
            lambda seq: Ended.create(
                now=step.now,
                seq=seq,
                vend_id=vend.vend_id,
                reason=reason,
                dispensed=vend.lines,
                currency=vend.amount.currency,
            ),
        )
        self._save(step, _replace(vend, phase=VendPhase.ENDED, updated=step.now, outcome=ended))
        self._release(vend.vend_id)
        step.log(Log.info("vend.ended", vend_id=vend.vend_id, reason=reason))

    def _current_vend(self, phase: VendPhase) -> VendRecord | None:
        vend = self._vends.get(self._current) if self._current else None
        return vend if vend is not None and vend.phase is phase else None

    def _release(self, vend_id: str) -> None:
        if self._current == vend_id:
            self._current = None

    # -- timers -------------------------------------------------------------------------------

    def _resend_due(self, step: Step, event: ResendDue) -> None:
        self._give_up_stuck_start(step)
        self._resend(step, everything=False)

    def _give_up_stuck_start(self, step: Step) -> None:
        vend = self._current_vend(VendPhase.PENDING)
        if vend is not None and step.now - vend.updated >= self.begin_timeout:
            step.log(Log.warning("vend.begin_timed_out", vend_id=vend.vend_id))
            step.do(CancelSession(vend.vend_id))
            self._current = None
            self._reject(step, vend.vend_id, vend.amount, RejectReason.BOARD_DOWN)

    def _resend(self, step: Step, *, everything: bool) -> None:
        if not self.connected:
            return
        due = list(self._due_for_resend(step.now, everything))
        for event in due:
            self._publish_event(step, event)
        if due:
            step.log(Log.info("outbox.resent", count=len(due), outbox=len(self._pending)))

    def _due_for_resend(self, now: datetime, everything: bool) -> Iterator[OutboxEvent]:
        interval = timedelta(seconds=self.settings.resend_interval_s)
        for event in self._pending.values():
            sent_at = self._sent_at.get(event.id)
            if everything or sent_at is None or now - sent_at >= interval:
                yield event

    def _telemetry_due(self, step: Step, event: TelemetryDue) -> None:
        if not self.connected:
            return
        extra = {"link_up": event.board.link_up, "open_vends": list(self.open_vends)}
        telemetry = Telemetry.create(
            now=step.now,
            uptime_s=event.uptime_s,
            board=event.board.state,
            outbox=len(self._pending),
            extra={**extra, **event.extra},
        )
        step.do(Publish(telemetry.wire_name(), telemetry.encode()))

    # -- helpers ------------------------------------------------------------------------------

    def _reject(self, step: Step, vend_id: str, amount: Money, reason: RejectReason) -> None:
        rejected = self._emit(
            step,
            vend_id,
            lambda seq: Rejected.create(now=step.now, seq=seq, vend_id=vend_id, reason=reason),
        )
        record = VendRecord(vend_id, VendPhase.REJECTED, amount, step.now, outcome=rejected)
        self._save(step, record)
        self._release(vend_id)
        step.log(Log.info("vend.rejected", vend_id=vend_id, reason=reason))

    def _emit(self, step: Step, vend_id: str | None, build: Callable[[int], Event]) -> OutboxEvent:
        """Number, record and (if connected) publish one event; it stays until acked."""
        message = build(self._next_seq(step))
        event = OutboxEvent(
            id=message.id,
            seq=message.seq,
            name=message.wire_name(),
            vend_id=vend_id,
            payload=message.encode(),
            created=step.now,
        )
        step.events.append(event)
        self._pending[event.id] = event
        self._publish_event(step, event)
        return event

    def _publish_event(self, step: Step, event: OutboxEvent) -> None:
        if self.connected:
            self._sent_at[event.id] = step.now
            step.do(Publish(event.name, event.payload, event.id))

    def _next_seq(self, step: Step) -> int:
        # Never reused, even across boots, so the cloud can order any two events of a machine.
        self._last_seq += 1
        step.last_seq = self._last_seq
        return self._last_seq

    def _save(self, step: Step, vend: VendRecord) -> None:
        self._vends[vend.vend_id] = vend
        step.vends[vend.vend_id] = vend

    def _zero(self) -> Money:
        return Money.zero(self.currency)

    _handlers: ClassVar[dict[type, Callable[[AgentCore, Step, Any], None]]] = {
        Booted: _booted,
        Connected: _connected,
        Disconnected: _disconnected,
        ShuttingDown: _shutting_down,
        CommandArrived: _command,
        BeginFailed: _begin_failed,
        SessionOpened: _session_opened,
        VendApproved: _vend_approved,
        VendResult: _vend_result,
        SessionClosed: _session_closed,
        ResendDue: _resend_due,
        TelemetryDue: _telemetry_due,
    }


def _replace(vend: VendRecord, **changes: Any) -> VendRecord:
    return dataclasses.replace(vend, **changes)

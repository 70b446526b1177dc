"""The edge agent's pure core: ``handle(input, now) -> actions``. No I/O, no clock.

It decides everything the agent does: what to say on connect, which command does what (the vend
rules are in ``_vends``), what the outbox holds until the cloud's ``ack`` (``_ledger``), when to
re-send (on every connect, on the resend timer, and at once when a cloud replica announces
itself on ``{prefix}/cloud``), how to answer a ``ping``. Each step's durable changes come first
in its actions as one ``Persist``, which the shell commits before it publishes anything, so a
crash at any point loses no event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from vendgate.edge._actions import Action, ApplySettings, Log, Publish, SetWill
from vendgate.edge._inputs import (
    BeginFailed,
    Board,
    Booted,
    CloudPresenceArrived,
    CommandArrived,
    Connected,
    Connecting,
    Disconnected,
    Input,
    ItemApproved,
    ItemResult,
    ResendDue,
    SessionEnded,
    SessionFunded,
    ShuttingDown,
    TelemetryDue,
)
from vendgate.edge._ledger import Ledger
from vendgate.edge._records import OutboxEvent, Snapshot, VendRecord
from vendgate.edge._settings import Settings
from vendgate.edge._step import Step
from vendgate.edge._vends import VendRules
from vendgate.protocol.mqtt import (
    MESSAGE_TYPES,
    Ack,
    Authorized,
    Cancel,
    CloudPresence,
    Config,
    Hello,
    MessageError,
    Ping,
    Pong,
    Status,
    StatusState,
    Telemetry,
)

__all__ = ["AgentCore"]


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
        self.boot_id: str | None = None
        self.versions: dict[str, str] = {}
        # Connect attempts of this boot: attempt k says `online` with seq 2k, its will 2k+1.
        self.attempt = 0
        self._cloud_presence_seen: str | None = None  # id of the last `cloud` online acted on
        self.settings, _, self._settings_problems = (defaults or Settings()).updated(
            snapshot.settings
        )
        self.ledger = Ledger(snapshot)
        self.vends = VendRules(self.ledger, currency=currency, begin_timeout_s=begin_timeout_s)

    # -- what the shell and the tests may look at ---------------------------------------------

    @property
    def outbox(self) -> tuple[OutboxEvent, ...]:
        """Events not acknowledged yet, in seq order."""
        return self.ledger.outbox

    @property
    def open_vends(self) -> tuple[str, ...]:
        return tuple(vend.vend_id for vend in self.ledger.active_vends())

    def vend(self, vend_id: str) -> VendRecord | None:
        return self.ledger.vend(vend_id)

    # -- the one entry point ------------------------------------------------------------------

    def handle(self, event: Input, now: datetime) -> list[Action]:
        step = Step(now)
        self._handlers[type(event)](self, step, event)
        return step.actions()

    # -- lifecycle and connection -------------------------------------------------------------

    def _booted(self, step: Step, event: Booted) -> None:
        self.boot_id, self.versions = event.boot_id, dict(event.versions)
        step.boot_id = event.boot_id
        unfinished = ",".join(self.open_vends) or None
        outbox = len(self.outbox)
        step.log(
            Log.info("agent.boot", boot_id=event.boot_id, outbox=outbox, unfinished=unfinished)
        )
        for problem in self._settings_problems:
            step.log(Log.warning("config.stored_setting_ignored", problem=problem))
        self.vends.finish_after_restart(step)
        step.do(SetWill(self._status(step.now, StatusState.OFFLINE).encode()))
        step.do(ApplySettings(self.settings))

    def _connecting(self, step: Step, event: Connecting) -> None:
        # A fresh will per attempt: its seq must beat the `online` of the attempt before.
        self.attempt += 1
        step.do(SetWill(self._status(step.now, StatusState.OFFLINE).encode()))

    def _connected(self, step: Step, event: Connected) -> None:
        boot_id = self._require_boot()
        self.ledger.connected = True
        self.ledger.forget_sends()
        outbox = len(self.outbox)
        step.log(Log.info("mqtt.connected", session_present=event.session_present, outbox=outbox))
        step.do(Publish(Status.wire_name(), self._status(step.now, StatusState.ONLINE).encode()))
        hello = Hello.create(
            now=step.now,
            seq=self.ledger.next_seq(step),
            boot_id=boot_id,
            open_vends=self.open_vends,
            outbox=outbox,
        )
        step.do(Publish(hello.wire_name(), hello.encode(), hello.id))
        self._resend(step)

    def _disconnected(self, step: Step, event: Disconnected) -> None:
        self.ledger.connected = False
        step.log(Log.warning("mqtt.disconnected", reason=event.reason, outbox=len(self.outbox)))

    def _shutting_down(self, step: Step, event: ShuttingDown) -> None:
        step.log(Log.info("agent.stop", outbox=len(self.outbox)))
        if self.ledger.connected:
            status = self._status(step.now, StatusState.OFFLINE)
            step.do(Publish(status.wire_name(), status.encode()))

    def _status(self, now: datetime, state: StatusState) -> Status:
        """This attempt's ``online`` (seq 2k) or ``offline`` (2k+1: the will, a clean stop)."""
        seq = 2 * self.attempt + (1 if state is StatusState.OFFLINE else 0)
        return Status.create(
            now=now, state=state, boot_id=self._require_boot(), versions=self.versions, seq=seq
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
            self.vends.authorized(step, message, event.board)
        elif isinstance(message, Cancel):
            self.vends.cancel(step, message)
        elif isinstance(message, Ack):
            self._ack(step, message)
        elif isinstance(message, Config):
            self._config(step, message)
        elif isinstance(message, Ping):
            self._ping(step, message, event.board)

    def _ping(self, step: Step, ping: Ping, board: Board) -> None:
        """Answer at once, from the board as it is now; never stored, never re-sent."""
        if ping.is_expired(step.now):
            step.log(Log.info("ping.expired", ping_id=ping.id))
            return
        open_vends = self.open_vends
        pong = Pong.create(
            now=step.now,
            ping_id=ping.id,
            boot_id=self._require_boot(),
            board=board.state,
            can_vend=board.can_begin_session and not open_vends,
            open_vends=open_vends,
        )
        step.do(Publish(pong.wire_name(), pong.encode()))
        step.log(Log.info("ping.answered", ping_id=ping.id, can_vend=pong.can_vend))

    def _ack(self, step: Step, command: Ack) -> None:
        removed = self.ledger.acknowledge(step, list(command.events))
        for event in removed:
            fields = {"vend_id": event.vend_id, "event_id": event.id, "name": event.name}
            step.log(Log.debug("event.acked", **fields))
        unknown = len(set(command.events)) - len(removed)
        outbox = len(self.outbox)
        step.log(Log.info("outbox.acked", acked=len(removed), unknown=unknown, outbox=outbox))

    def _config(self, step: Step, command: Config) -> None:
        self.settings, applied, problems = self.settings.updated(command.settings)
        for problem in problems:
            step.log(Log.warning("config.setting_refused", problem=problem))
        if applied:
            step.settings.update(applied)
            step.do(ApplySettings(self.settings))
            step.log(Log.info("config.applied", **_described(applied)))

    def _cloud_presence(self, step: Step, event: CloudPresenceArrived) -> None:
        try:
            presence = CloudPresence.decode(event.payload)
        except MessageError as error:
            step.log(Log.warning("cloud.presence_malformed", error=str(error)))
            return
        # The same retained message again (our re-subscribe) is no news: connect re-sent.
        if presence.state is not StatusState.ONLINE or presence.id == self._cloud_presence_seen:
            return
        self._cloud_presence_seen = presence.id
        step.log(Log.info("cloud.online", replica=presence.replica, retained=event.retained))
        self._resend(step, everything=True)

    # -- timers -------------------------------------------------------------------------------

    def _resend_due(self, step: Step, event: ResendDue) -> None:
        self.vends.give_up_stuck_start(step)
        resent = self._resend(step)
        # One line per timer check, so a test (or an operator at DEBUG) sees that a check ran
        # and re-sent nothing, rather than waiting and hoping it did.
        connected = self.ledger.connected
        outbox = len(self.outbox)
        step.log(Log.debug("outbox.checked", connected=connected, resent=resent, outbox=outbox))

    def _resend(self, step: Step, *, everything: bool = False) -> int:
        """Publish what is due again (nothing while offline); how many were re-sent."""
        if not self.ledger.connected:
            return 0
        interval = 0.0 if everything else self.settings.resend_interval_s
        due = list(self.ledger.due_for_resend(step.now, interval))
        for event in due:
            self.ledger.publish(step, event)
        if due:
            step.log(Log.info("outbox.resent", count=len(due), outbox=len(self.outbox)))
        return len(due)

    def _telemetry_due(self, step: Step, event: TelemetryDue) -> None:
        if not self.ledger.connected:
            return
        extra = {"link_up": event.board.link_up, "open_vends": list(self.open_vends)}
        telemetry = Telemetry.create(
            now=step.now,
            uptime_s=event.uptime_s,
            board=event.board.state,
            outbox=len(self.outbox),
            extra={**extra, **event.extra},
        )
        step.do(Publish(telemetry.wire_name(), telemetry.encode()))

    _handlers: ClassVar[dict[type, Callable[[AgentCore, Step, Any], None]]] = {
        Booted: _booted,
        Connecting: _connecting,
        Connected: _connected,
        Disconnected: _disconnected,
        ShuttingDown: _shutting_down,
        CommandArrived: _command,
        CloudPresenceArrived: _cloud_presence,
        ResendDue: _resend_due,
        TelemetryDue: _telemetry_due,
        BeginFailed: lambda core, step, event: core.vends.begin_failed(step, event),
        SessionFunded: lambda core, step, event: core.vends.session_funded(step, event),
        ItemApproved: lambda core, step, event: core.vends.item_approved(step, event),
        ItemResult: lambda core, step, event: core.vends.item_result(step, event),
        SessionEnded: lambda core, step, event: core.vends.session_ended(step, event),
    }


def _described(applied: dict[str, Any]) -> dict[str, Any]:
    """Settings for a log line: a planogram by its size, not item by item."""
    if isinstance(planogram := applied.get("planogram"), list):
        return {**applied, "planogram": f"{len(planogram)} items"}
    return applied

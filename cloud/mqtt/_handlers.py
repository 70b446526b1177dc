"""What the cloud does with each message from a machine, one transaction per message.

Events are handled once: their id goes into ``processed_messages`` in the same transaction
as their effect, and only after that commits is the event acknowledged (``cmd/ack``); a
repeat is acknowledged again and changes nothing.

An event the cloud cannot apply (it does not decode, or applying it fails) would come back
forever, since the edge re-sends until acked: it is *rejected* instead, i.e. recorded in
``rejected_events`` with the reason, alerted, and acknowledged. A database outage is not a
reason to reject: such an event is not acknowledged, and the edge re-sends it until the
database is back. A bad payload without a usable id, and a bad status or telemetry, is
logged and dropped (there is nothing to acknowledge).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field

import aiomqtt
from sqlmodel.ext.asyncio.session import AsyncSession

from vendgate.cloud.db import Machine, SessionFactory, first_time, transaction
from vendgate.cloud.machines import (
    Heartbeats,
    Pings,
    record_status,
    record_telemetry,
    send_planogram,
)
from vendgate.cloud.vends import (
    Decision,
    EdgeDispensed,
    EdgeEnded,
    EdgeRejected,
    EdgeStarted,
    Input,
    Line,
    VendService,
)
from vendgate.protocol import Clock, Money
from vendgate.protocol.mqtt import (
    Ack,
    ContractError,
    Dispensed,
    Ended,
    Event,
    Hello,
    Message,
    ParsedTopic,
    Pong,
    Rejected,
    RejectReason,
    Started,
    Status,
    Telemetry,
    TopicKind,
    TopicTree,
    decode_for_topic,
    ids_of,
)

from ._link import Reply
from ._rejections import Rejection, describe, event_key, is_outage, reject

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MessageHandler:
    """Turns a machine's messages into the vend service's inputs; answers with the acks for
    the link to publish (after the transaction that handled the event committed).

    A pong goes to ``pings`` (the scan waiting for it). After an event the vend service takes
    over what it decided (commands out, a settlement worked at once); after a ``hello``,
    ``on_command`` (its planogram is in the outbox).
    """

    sessions: SessionFactory
    vends: VendService
    pings: Pings
    tree: TopicTree
    _: KW_ONLY
    clock: Clock
    on_command: Callable[[], None]
    # A vend event is a heartbeat too, written at most this often (0: every event).
    heartbeats: Heartbeats = field(default_factory=lambda: Heartbeats(0))

    async def __call__(self, message: aiomqtt.Message) -> list[Reply]:
        topic = str(message.topic)
        payload = message.payload if isinstance(message.payload, bytes | str) else b""
        try:
            parsed = self.tree.parse(topic)
        except ContractError as exc:
            log.warning("dropped a bad message on %s: %s", topic, exc)
            return []
        try:
            return await self._receive(topic, parsed, payload)
        except Exception:  # a database outage: the edge re-sends, we must not die
            log.exception("failed to handle %s; the edge will re-send it", topic)
            return []

    async def _receive(self, topic: str, parsed: ParsedTopic, payload: bytes | str) -> list[Reply]:
        try:
            decoded = decode_for_topic(parsed, payload)
        except ContractError as exc:
            return await self._undecodable(topic, parsed, payload, exc)
        return await self.handle(parsed, decoded)

    async def _undecodable(
        self, topic: str, parsed: ParsedTopic, payload: bytes | str, error: ContractError
    ) -> list[Reply]:
        """Reject a bad event that names its id (so the edge stops re-sending); drop the rest."""
        event_id, vend_id = ids_of(payload)
        if parsed.kind is not TopicKind.EVENT or event_id is None:
            log.warning("dropped a bad message on %s: %s", topic, error)
            return []
        raw = payload.encode() if isinstance(payload, str) else payload
        rejection = Rejection(parsed.machine_id, parsed.kind_name, event_id, vend_id, str(error))
        if await reject(self.sessions, rejection, raw, self.clock.now()):
            return [self._ack(parsed.machine_id, event_id)]
        return []

    async def handle(self, topic: ParsedTopic, message: Message) -> list[Reply]:
        if isinstance(message, Pong):
            # Only the replica that pinged waits for it; never stored, never acked.
            self.pings.answered(topic.machine_id, message)
        elif isinstance(message, Event):
            return await self._event(topic.machine_id, message)
        elif isinstance(message, Status | Telemetry):
            await self._presence(topic.machine_id, message)
        else:
            log.warning("ignored %s from %s: not for the cloud", topic.kind_name, topic.machine_id)
        return []

    async def _presence(self, machine_id: str, message: Status | Telemetry) -> None:
        now = self.clock.now()
        async with transaction(self.sessions) as db:
            machine = await db.get(Machine, machine_id)
            if machine is None:
                log.info("%s from unknown machine %s ignored", message.wire_name(), machine_id)
                return
            if isinstance(message, Status):
                record_status(machine, message, now)
            else:
                record_telemetry(machine, message, now)
            db.add(machine)

    async def _event(self, machine_id: str, event: Event) -> list[Reply]:
        try:
            await self._handle_event(machine_id, event)
        except Exception as error:  # whatever it is, it must not loop
            if not await self._not_applied(machine_id, event, error):
                return []
        if isinstance(event, Hello):
            self.on_command()  # the planogram
        # Committed or rejected (now or before): the edge may drop it from its outbox.
        return [self._ack(machine_id, event.id)]

    async def _handle_event(self, machine_id: str, event: Event) -> None:
        decision = None
        async with transaction(self.sessions) as db:
            if await self._first_time(db, machine_id, event):
                decision = await self._apply(db, machine_id, event)
        # Committed: its commands go out, and a session it made due (a settlement) is worked
        # at once.
        self.vends.committed(decision, db)

    async def _not_applied(self, machine_id: str, event: Event, error: Exception) -> bool:
        """Reject an event whose application failed, unless the database is what failed.

        True when the event is on record after all (rejected now, or handled before, by
        another replica too): it may be acknowledged.
        """
        if is_outage(error):
            log.warning(
                "%s %s from %s not applied, the database is unavailable (%s); not acknowledged, "
                "the edge will re-send it",
                event.wire_name(),
                event.id,
                machine_id,
                describe(error),
            )
            return False
        vend_id = getattr(event, "vend_id", None)
        rejection = Rejection(machine_id, event.wire_name(), event.id, vend_id, describe(error))
        return await reject(self.sessions, rejection, event.encode(), self.clock.now())

    async def _first_time(self, db: AsyncSession, machine_id: str, event: Event) -> bool:
        if await first_time(db, event_key(machine_id, event.id), self.clock.now()):
            return True
        log.info("duplicate event %s from %s", event.id, machine_id)
        return False

    async def _apply(self, db: AsyncSession, machine_id: str, event: Event) -> Decision | None:
        now = self.clock.now()
        vend_id = getattr(event, "vend_id", None)
        if vend_id is None:
            machine = await db.get(Machine, machine_id)
            if machine is not None and machine.online:
                machine.last_seen_at = now
            if isinstance(event, Hello) and machine is not None:
                machine.outbox_depth = event.outbox
                # Every connect: the edge prices vends by the planogram it holds.
                await send_planogram(db, self.tree, machine, now)
            return None
        await self.heartbeats.seen(db, machine_id, now)
        fact = vend_input(event)
        if fact is None:
            return None
        decision = await self.vends.apply_in(db, vend_id, fact, work=True, machine_id=machine_id)
        if decision is None:
            log.warning(
                "%s from %s names a vend it does not own: %s",
                event.wire_name(),
                machine_id,
                vend_id,
            )
        return decision

    def _ack(self, machine_id: str, event_id: str) -> Reply:
        ack = Ack.create(now=self.clock.now(), events=[event_id])
        return Reply(str(self.tree.command(machine_id, "ack")), ack.encode())


def _line(item: int, price: Money, success: bool, vmc_price: Money | None) -> Line:
    return Line(item, price, success, vmc_price)


def vend_input(event: Event) -> Input | None:
    """What a machine's event says about its vend session, as the core's input."""
    if isinstance(event, Started):
        return EdgeStarted(str(event.funds))
    if isinstance(event, Dispensed):
        return EdgeDispensed(_line(event.item, event.price, event.success, event.vmc_price))
    if isinstance(event, Rejected):
        # `duplicate` answers a re-sent command the edge already has: not a refusal.
        duplicate = event.reason is RejectReason.DUPLICATE
        return EdgeRejected(str(event.reason), duplicate=duplicate)
    if isinstance(event, Ended):
        lines = tuple(_line(d.item, d.price, d.success, d.vmc_price) for d in event.dispensed)
        return EdgeEnded(str(event.reason), lines)
    return None

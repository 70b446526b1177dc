"""The core's memory: events still owed to the cloud, every vend seen, the seq counter.

Every change goes through a ``Step``, so it lands in that step's ``Persist`` and is durable
before anything of the step is published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from vendgate.edge._actions import Publish
from vendgate.edge._records import OutboxEvent, Snapshot, VendRecord
from vendgate.edge._step import Step
from vendgate.protocol.mqtt import Event

__all__ = ["Ledger"]


class Ledger:
    def __init__(self, snapshot: Snapshot) -> None:
        self.connected = False
        self._pending: dict[str, OutboxEvent] = {e.id: e for e in snapshot.pending}
        self._sent_at: dict[str, datetime] = {}
        self._vends: dict[str, VendRecord] = {v.vend_id: v for v in snapshot.vends}
        self._last_seq = max([snapshot.last_seq, *(e.seq for e in snapshot.pending)])

    # -- reading ------------------------------------------------------------------------------

    @property
    def outbox(self) -> tuple[OutboxEvent, ...]:
        """Events not acknowledged yet, in seq order."""
        return tuple(self._pending.values())

    def vend(self, vend_id: str | None) -> VendRecord | None:
        return None if vend_id is None else self._vends.get(vend_id)

    def active_vends(self) -> list[VendRecord]:
        return [v for v in self._vends.values() if v.phase.is_active]

    # -- writing ------------------------------------------------------------------------------

    def next_seq(self, step: Step) -> int:
        # Never reused, even across boots, so the cloud can order any two events of a machine.
        self._last_seq += 1
        step.last_seq = self._last_seq
        return self._last_seq

    def emit(self, step: Step, vend_id: str | None, build: Callable[[int], Event]) -> OutboxEvent:
        """Number, record and (if connected) publish one event; it stays until acked."""
        message = build(self.next_seq(step))
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
        self.publish(step, event)
        return event

    def publish(self, step: Step, event: OutboxEvent) -> None:
        """Send ``event`` (again) if connected; offline, the next connect sends it."""
        if self.connected:
            self._sent_at[event.id] = step.now
            step.do(Publish(event.name, event.payload, event.id))

    def save(self, step: Step, vend: VendRecord) -> None:
        self._vends[vend.vend_id] = vend
        step.vends[vend.vend_id] = vend

    def acknowledge(self, step: Step, event_ids: list[str]) -> list[OutboxEvent]:
        """Drop the named events from the outbox; return those that were in it."""
        removed = []
        for event_id in dict.fromkeys(event_ids):  # an id named twice is removed once
            event = self._pending.pop(event_id, None)
            if event is not None:
                self._sent_at.pop(event_id, None)
                step.acked.append(event_id)
                removed.append(event)
        return removed

    def due_for_resend(self, now: datetime, interval_s: float) -> Iterator[OutboxEvent]:
        """Events never sent on this connection, or last sent ``interval_s`` ago or more."""
        interval = timedelta(seconds=interval_s)
        for event in self._pending.values():
            sent_at = self._sent_at.get(event.id)
            if sent_at is None or now - sent_at >= interval:
                yield event

    def forget_sends(self) -> None:
        """A new connection: everything pending counts as never sent."""
        self._sent_at.clear()

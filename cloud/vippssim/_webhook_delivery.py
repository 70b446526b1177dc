"""Webhook registrations and their delivery: signed, retried with backoff, in order per payment.

Each (registration, payment) pair is a lane worked by one task, so a failing event holds back
the later events of the same payment until it succeeds or is given up, as Vipps does.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from vendgate.protocol import Clock

from ._faults import FaultSettings
from ._signing import vipps_signature_headers

log = logging.getLogger(__name__)

MAX_REGISTRATIONS_PER_EVENT = 25
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Registration:
    id: str
    url: str
    events: tuple[str, ...]
    secret: str


@dataclass
class DeliveryRecord:
    """What happened to one event for one registration (for tests and the status page)."""

    registration_id: str
    event: str
    reference: str
    attempts: int = 0
    delivered: int = 0  # successful POSTs: 2 when duplicated on purpose
    dropped: bool = False
    gave_up: bool = False
    statuses: list[int | str] = field(default_factory=list)


class WebhookRegistry:
    def __init__(self) -> None:
        self._by_id: dict[str, Registration] = {}

    def register(self, url: str, events: list[str]) -> Registration:
        registration = Registration(
            str(uuid.uuid4()), url, tuple(events), secrets.token_urlsafe(48)
        )
        self._by_id[registration.id] = registration
        return registration

    def count_for(self, event: str) -> int:
        return sum(event in r.events for r in self._by_id.values())

    def all(self) -> list[Registration]:
        return list(self._by_id.values())

    def delete(self, registration_id: str) -> bool:
        return self._by_id.pop(registration_id, None) is not None

    def subscribers(self, event: str) -> list[Registration]:
        return [r for r in self._by_id.values() if event in r.events]


@dataclass(frozen=True)
class _Pending:
    registration: Registration
    record: DeliveryRecord
    body: bytes


class WebhookDispatcher:
    def __init__(
        self,
        faults: FaultSettings,
        *,
        retry_delays: tuple[float, ...],
        timeout: float,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._faults = faults
        self._retry_delays = retry_delays
        self._timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self._http = http
        self._owns_http = http is None
        self._lanes: dict[tuple[str, str], deque[_Pending]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.records: list[DeliveryRecord] = []

    def publish(
        self, registrations: list[Registration], event: str, reference: str, body: bytes
    ) -> None:
        """Queue ``body`` for each registration; call after the state change is recorded."""
        for registration in registrations:
            record = DeliveryRecord(registration.id, event, reference)
            self.records.append(record)
            lane = (registration.id, reference)
            queue = self._lanes.setdefault(lane, deque())
            queue.append(_Pending(registration, record, body))
            if len(queue) == 1:
                task = asyncio.get_running_loop().create_task(self._work(lane))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _work(self, lane: tuple[str, str]) -> None:
        queue = self._lanes[lane]
        while queue:
            await self._deliver(queue[0])
            queue.popleft()
        del self._lanes[lane]

    async def _deliver(self, pending: _Pending) -> None:
        record = pending.record
        if self._faults.drop_webhook():
            record.dropped = True
            return
        copies = 2 if self._faults.duplicate_webhook() else 1
        for _ in range(copies):
            if not await self._deliver_with_retries(pending):
                record.gave_up = True
                return

    async def _deliver_with_retries(self, pending: _Pending) -> bool:
        for delay in (*self._retry_delays, None):
            if self._faults.webhook_delay:
                await self._sleep(self._faults.webhook_delay)
            if await self._post(pending):
                return True
            if delay is None:
                return False
            await self._sleep(delay)
        return False  # pragma: no cover - the loop always returns

    async def _post(self, pending: _Pending) -> bool:
        record, registration = pending.record, pending.registration
        record.attempts += 1
        headers = vipps_signature_headers(
            registration.secret, registration.url, pending.body, self._clock.now().timestamp()
        )
        try:
            response = await self._client().post(
                registration.url, content=pending.body, headers=headers
            )
        except httpx.HTTPError as exc:
            record.statuses.append(type(exc).__name__)
            log.info("webhook %s to %s failed: %r", record.event, registration.url, exc)
            return False
        record.statuses.append(response.status_code)
        if response.is_success:
            record.delivered += 1
            return True
        return False

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        return self._http

    async def idle(self) -> None:
        """Wait until every queued delivery is done (delivered, dropped or given up)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

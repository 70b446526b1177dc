"""Helpers for the cloud purchase-flow tests: a running cloud, the Vipps simulator, a fake edge.

- ``running_cloud(settings)``: the cloud app with its lifespan (database, MQTT, reconciler) in
  this event loop, an httpx client to it, and the Vipps simulator in process. The simulator's
  webhooks go to the cloud app (``ASGITransport``), so they are signed and verified for real.
- ``FakeEdge``: a plain aiomqtt client speaking the wire contract as a machine would: status
  online (retained, with an offline will, both with their seq), answers ``ping`` with
  ``pong``, ``authorized`` with ``started``, then the scripted ``dispensed`` and ``ended``;
  keeps unacked events and re-sends them, on its timer and when the cloud announces itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import httpx
from litestar import Litestar
from sqlmodel import col, select

from vendgate.cloud.app import CloudParts, create_app
from vendgate.cloud.broker import BrokerAccounts
from vendgate.cloud.db import Machine, Payment, VendSession, transaction
from vendgate.cloud.faults import Faults, no_faults
from vendgate.cloud.machines import MachineSpec, SlotSpec, upsert_machine
from vendgate.cloud.settings import (
    CloudSettings,
    DatabaseSettings,
    MqttSettings,
    TimingSettings,
    WebhookSettings,
)
from vendgate.cloud.vipps import VippsSettings
from vendgate.cloud.vippssim import LedgerPayment, SimSettings, VippsSimulator, create_vipps_sim
from vendgate.protocol import Clock, Money
from vendgate.protocol.mqtt import (
    Ack,
    Authorized,
    Cancel,
    CloudPresence,
    Dispensed,
    DispensedItem,
    Ended,
    EndReason,
    Event,
    Hello,
    Ping,
    Pong,
    Rejected,
    RejectReason,
    Started,
    Status,
    StatusState,
    TopicTree,
    decode_for_topic,
)

log = logging.getLogger(__name__)

PUBLIC_URL = "http://cloud.test"
VIPPS_URL = "http://vipps.test"
COLA = SlotSpec(item=11, name="Cola", price=2500, vat_rate=1500)
CHOCOLATE = SlotSpec(item=12, name="Chocolate", price=3500, vat_rate=1500)
PLANOGRAM = (COLA, CHOCOLATE)
MAX_PRICE = 3500

# Short intervals so the whole flow takes well under a second; never asserted on. The ping
# bound is generous instead: a loaded CI machine must never make a live machine look silent.
FAST = TimingSettings(
    heartbeat_window=60.0,
    settle_deadline=30.0,
    authorized_ttl=10.0,
    authorized_resend=0.3,
    poll_first=0.1,
    poll_interval=0.1,
    reconcile_interval=0.1,
    work_lease=2.0,
    retry_delay=0.2,
    ping_timeout=10.0,
)


def cloud_settings(
    database_url: str,
    mqtt: MqttSettings | None = None,
    timing: TimingSettings = FAST,
    **overrides: Any,
) -> CloudSettings:
    if mqtt is None:
        timing = dataclasses.replace(timing, ping_timeout=0)  # nobody to answer a ping
    return CloudSettings(
        public_url=PUBLIC_URL,
        database=DatabaseSettings(url=database_url),
        mqtt=mqtt or MqttSettings(),
        vipps=VippsSettings(base_url=VIPPS_URL),
        webhooks=WebhookSettings(),
        timing=timing,
        run_mqtt=mqtt is not None,
        **overrides,
    )


def sqlite_url(folder: Any) -> str:
    return f"sqlite+aiosqlite:///{folder}/cloud.db"


class Forward:
    """An ASGI app that forwards to another, set later (the two apps call each other)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclass
class Cloud:
    app: Litestar
    http: httpx.AsyncClient
    sim: VippsSimulator
    sim_http: httpx.AsyncClient

    @property
    def parts(self) -> CloudParts:
        """What the app built (``create_app``'s composition root), to look at and to drive."""
        parts: CloudParts = self.app.state.parts
        return parts


@contextlib.asynccontextmanager
async def running_cloud(
    settings: CloudSettings,
    *,
    clock: Clock | None = None,
    sim_settings: SimSettings | None = None,
    faults: Faults = no_faults,
    broker_accounts: BrokerAccounts | None = None,
) -> AsyncIterator[Cloud]:
    to_cloud = Forward()
    webhook_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=to_cloud))
    sim_app = create_vipps_sim(
        sim_settings or SimSettings(webhook_retry_delays=(0.05, 0.05, 0.1)),
        webhook_http=webhook_http,
    )
    transport_to_sim = httpx.ASGITransport(app=sim_app)
    app = create_app(
        settings,
        clock=clock,
        vipps_transport=transport_to_sim,
        faults=faults,
        broker_accounts=broker_accounts,
    )
    to_cloud.app = app
    sim: VippsSimulator = sim_app.state.sim
    transport = httpx.ASGITransport(app=app)
    sim_transport = httpx.ASGITransport(app=sim_app)
    async with (
        lifespan_of(app),
        httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http,
        httpx.AsyncClient(transport=sim_transport, base_url=VIPPS_URL) as sim_http,
    ):
        try:
            yield Cloud(app, http, sim, sim_http)
        finally:
            # Let deliveries in flight finish: cancelling one cancels the cloud's webhook
            # handler it is running (same task, ASGI transport) in the middle of a transaction.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sim.webhooks_idle(), 30)  # a loaded machine: be patient
            await sim.aclose()
            await webhook_http.aclose()


@contextlib.asynccontextmanager
async def lifespan_of(app: Litestar) -> AsyncIterator[None]:
    """Run the app's lifespan in a task of its own: pytest may set a fixture up in one task
    and tear it down in another, which anyio's cancel scopes (inside Litestar) refuse."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(hold())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # raises what went wrong at start
    try:
        yield
    finally:
        stop.set()
        await task


# -- database helpers -------------------------------------------------------------------------


async def seed_machine(
    parts: CloudParts,
    machine_id: str,
    slots: Sequence[SlotSpec] = PLANOGRAM,
    *,
    online: bool = False,
    callback_qr_id: str | None = None,
    **options: Any,
) -> None:
    """The machine and its planogram; ``options`` (price_mode, vat_rate...) go to its spec."""
    now = parts.clock.now()
    spec = MachineSpec(
        machine_id, f"Machine {machine_id}", slots, callback_qr_id=callback_qr_id, **options
    )
    async with transaction(parts.sessions) as db:
        machine = await upsert_machine(db, spec, now)
        if online:
            machine.online, machine.last_seen_at, machine.status_at = True, now, now
            db.add(machine)


async def machine_row(parts: CloudParts, machine_id: str) -> Machine:
    async with transaction(parts.sessions) as db:
        machine = await db.get(Machine, machine_id)
    assert machine is not None
    return machine


async def vends_of(parts: CloudParts, machine_id: str) -> list[VendSession]:
    query = (
        select(VendSession)
        .where(VendSession.machine_id == machine_id)
        .order_by(col(VendSession.created_at))
    )
    async with transaction(parts.sessions) as db:
        return list((await db.exec(query)).all())


async def vend_row(parts: CloudParts, vend_id: str) -> VendSession:
    async with transaction(parts.sessions) as db:
        vend = await db.get(VendSession, vend_id)
    assert vend is not None
    return vend


async def payment_row(parts: CloudParts, vend_id: str) -> Payment:
    async with transaction(parts.sessions) as db:
        payment = await db.get(Payment, vend_id)
    assert payment is not None
    return payment


async def eventually(
    check: Callable[[], Awaitable[bool]], limit: float = 30.0, what: str = "condition"
) -> None:
    """Wait until ``check()`` is true (the flow is asynchronous); fail after ``limit`` seconds
    (a bound for a loaded machine with another suite beside it, never a pace)."""
    deadline = time.monotonic() + limit
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_for_state(parts: CloudParts, vend_id: str, *states: str) -> VendSession:
    async def reached() -> bool:
        return (await vend_row(parts, vend_id)).state in states

    await eventually(reached, what=f"vend {vend_id} in {states}")
    return await vend_row(parts, vend_id)


def ledger(sim: VippsSimulator, reference: str) -> LedgerPayment:
    return sim.payments.find(reference).ledger


def ledger_names(sim: VippsSimulator, reference: str) -> list[str]:
    return [event.name for event in ledger(sim, reference).events]


def receipt_count(sim: VippsSimulator, reference: str) -> int:
    return sum(1 for (_kind, order) in sim.receipts.receipts if order == reference)


async def scan(cloud: Cloud, machine_id: str) -> httpx.Response:
    return await cloud.http.get(f"/m/{machine_id}")


async def scan_and_approve(cloud: Cloud, machine_id: str) -> VendSession:
    """The customer scans, lands on Vipps, approves; returns the session."""
    response = await scan(cloud, machine_id)
    assert response.status_code == 302, response.text
    vend = (await vends_of(cloud.parts, machine_id))[-1]
    assert response.headers["location"] == (await payment_row(cloud.parts, vend.id)).redirect_url
    cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))
    return vend


# -- the fake edge ------------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class EdgeScript:
    """What happens at the machine after `authorized`: attempts, then how the session ends."""

    attempts: Sequence[DispensedItem] = ()
    end_reason: EndReason = EndReason.COMPLETED
    reject: RejectReason | None = None
    currency: str = "NOK"

    @classmethod
    def buys(cls, *prices: int, success: bool = True) -> EdgeScript:
        items = [COLA.item if p == COLA.price else CHOCOLATE.item for p in prices]
        return cls(
            [
                DispensedItem(item=i, price=Money(p, "NOK"), success=success)
                for i, p in zip(items, prices, strict=True)
            ]
        )


@dataclass
class FakeEdge:
    """A machine on MQTT, as any firmware implementing docs/mqtt-contract.md would be."""

    host: str
    port: int
    machine_id: str
    password: str | None = None
    script: EdgeScript = field(default_factory=EdgeScript)
    prefix: str = "vend/v1"
    resend_interval: float = 0.3
    boot_id: str = "boot-1"
    # What the test can look at.
    commands: list[Any] = field(default_factory=list)
    outbox: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    sent: list[Event] = field(default_factory=list)
    handled_vends: set[str] = field(default_factory=set)
    pongs: int = 0
    _seq: int = 0
    _attempt: int = 0  # connects of this boot: online says 2k, the will 2k+1
    _cloud_presence_seen: str | None = None
    _client: aiomqtt.Client | None = None

    @property
    def tree(self) -> TopicTree:
        return TopicTree(self.prefix)

    def _status(self, state: StatusState) -> bytes:
        seq = 2 * self._attempt + (1 if state is StatusState.OFFLINE else 0)
        return Status.create(
            now=utc_now(), state=state, boot_id=self.boot_id, versions={"agent": "fake"}, seq=seq
        ).encode()

    def _new_client(self) -> aiomqtt.Client:
        self._attempt += 1
        will = aiomqtt.Will(
            str(self.tree.status(self.machine_id)), self._status(StatusState.OFFLINE), 1, True
        )
        return aiomqtt.Client(
            self.host,
            self.port,
            username=self.machine_id,
            password=self.password,
            identifier=self.machine_id,
            clean_session=False,
            will=will,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )

    @contextlib.asynccontextmanager
    async def online(self) -> AsyncIterator[FakeEdge]:
        async with self._new_client() as client:
            self._client = client
            for topic_filter in self.tree.edge_filters(self.machine_id):
                await client.subscribe(str(topic_filter), qos=1)
            await client.publish(
                str(self.tree.status(self.machine_id)),
                self._status(StatusState.ONLINE),
                qos=1,
                retain=True,
            )
            await self.emit(Hello, boot_id=self.boot_id, open_vends=[], outbox=0)
            tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._resend())]
            try:
                yield self
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._client = None

    async def emit(self, kind: type[Event], **fields: Any) -> Event:
        """Publish an event and keep it until the cloud acks it."""
        self._seq += 1
        event = kind.create(now=utc_now(), seq=self._seq, **fields)  # type: ignore[attr-defined]
        topic = str(self.tree.event(self.machine_id, kind.topic_name or ""))
        self.outbox[event.id] = (topic, event.encode())
        self.sent.append(event)
        await self.publish_raw(topic, event.encode())
        return event

    async def publish_raw(self, topic: str, payload: bytes) -> None:
        assert self._client is not None
        await self._client.publish(topic, payload, qos=1)

    async def _resend(self) -> None:
        while True:
            await asyncio.sleep(self.resend_interval)
            for topic, payload in list(self.outbox.values()):
                await self.publish_raw(topic, payload)

    async def _listen(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            if self.tree.is_cloud_presence(str(message.topic)):
                await self._cloud_presence(CloudPresence.decode(message.payload))  # type: ignore[arg-type]
                continue
            parsed = self.tree.parse(str(message.topic))
            command = decode_for_topic(parsed, message.payload)  # type: ignore[arg-type]
            self.commands.append(command)
            try:
                await self._on_command(command)
            except Exception:
                log.exception("fake edge failed on %s", command)

    async def _cloud_presence(self, presence: CloudPresence) -> None:
        """A replica connected: it may have missed what we sent, so re-send it all now."""
        if presence.state is not StatusState.ONLINE or presence.id == self._cloud_presence_seen:
            return
        self._cloud_presence_seen = presence.id
        for topic, payload in list(self.outbox.values()):
            await self.publish_raw(topic, payload)

    async def _on_command(self, command: Any) -> None:
        if isinstance(command, Ping):
            await self._pong(command)
        elif isinstance(command, Ack):
            for event_id in command.events:
                self.outbox.pop(event_id, None)
                self.acked.add(event_id)
        elif isinstance(command, Authorized):
            await self._authorized(command)
        elif isinstance(command, Cancel):
            log.info("fake edge %s told to cancel %s", self.machine_id, command.vend_id)

    async def _pong(self, ping: Ping) -> None:
        """Answer at once, straight to the broker: a pong is never kept or re-sent."""
        if ping.is_expired(utc_now()):
            return
        pong = Pong.create(
            now=utc_now(),
            ping_id=ping.id,
            boot_id=self.boot_id,
            board="enabled",
            can_vend=True,
            open_vends=[],
        )
        self.pongs += 1
        await self.publish_raw(str(self.tree.event(self.machine_id, "pong")), pong.encode())

    async def _authorized(self, command: Authorized) -> None:
        if command.vend_id in self.handled_vends:
            return  # a re-send of a command already handled: ignore it
        self.handled_vends.add(command.vend_id)
        script = self.script
        if script.reject is not None:
            await self.emit(Rejected, vend_id=command.vend_id, reason=script.reject)
            return
        await self.emit(Started, vend_id=command.vend_id, funds=command.amount)
        for attempt in script.attempts:
            await self.emit(
                Dispensed,
                vend_id=command.vend_id,
                item=attempt.item,
                price=attempt.price,
                success=attempt.success,
                vmc_price=attempt.vmc_price,
            )
        await self.emit(
            Ended,
            vend_id=command.vend_id,
            reason=script.end_reason,
            dispensed=list(script.attempts),
            currency=script.currency,
        )

    def authorized_commands(self) -> list[Authorized]:
        return [c for c in self.commands if isinstance(c, Authorized)]


def future(seconds: float) -> datetime:
    return utc_now() + timedelta(seconds=seconds)


async def webhook_secret(parts: CloudParts) -> str:
    from vendgate.cloud.db import WebhookRegistration

    async with transaction(parts.sessions) as db:
        row = (await db.exec(select(WebhookRegistration))).first()
    assert row is not None, "the app registered no webhook"
    return row.secret


async def post_webhook(
    cloud: Cloud, body: bytes, *, secret: str | None = None, at: float | None = None
) -> httpx.Response:
    """POST a webhook signed like Vipps signs it (with our registration's secret)."""
    from vendgate.cloud.vipps import http_date, sign_webhook

    key = secret if secret is not None else await webhook_secret(cloud.parts)
    url = cloud.parts.settings.webhook_url
    date = http_date(time.time() if at is None else at)
    headers = sign_webhook(key, url, body, date)
    return await cloud.http.post(cloud.parts.settings.webhooks.path, content=body, headers=headers)


def payment_event(reference: str, name: str, amount: int = MAX_PRICE) -> bytes:
    import msgspec

    from vendgate.cloud.vipps import Amount, WebhookEvent

    event = WebhookEvent(
        msn="123456",
        reference=reference,
        psp_reference="1",
        name=name,  # type: ignore[arg-type]
        amount=Amount(amount, "NOK"),
        timestamp="2026-05-01T12:00:00Z",
        success=True,
    )
    return msgspec.json.encode(event)


def mqtt_message(topic: str, payload: bytes) -> aiomqtt.Message:
    return aiomqtt.Message(topic, payload, qos=1, retain=False, mid=1, properties=None)

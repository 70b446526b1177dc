"""The floor: a purchase's I/O with no business logic, to measure the cloud against.

What the cloud does per purchase, this does too, on the same stack (Litestar under uvicorn,
aiomqtt, SQLAlchemy async on the same database, the cloud's own Vipps client), and nothing
else: no state machine, no rules, no retries, no leases, no outbox.

- ``GET /m/{id}``: ``cmd/ping`` (QoS 0), wait for ``evt/pong`` (1.5 s), create the payment at
  Vipps, record it, 302 to the payment's ``redirectUrl``.
- ``POST /vipps/webhooks``: check the signature; on ``AUTHORIZED`` read the payment back, record
  it and publish ``cmd/authorized``.
- MQTT: ``status`` and ``telemetry`` recorded; every event recorded and acked; ``hello`` also
  answered with the planogram (``cmd/config``); after ``ended``: capture, cancel, read back
  (verify), post the receipt, each recorded; the last record closes the session.

Records are commits: ``--commits N`` per purchase, spread over the nine steps above (the
benchmark passes the number it measured for the cloud), so both do the same database work.
Settings come from the cloud's own variables (``CloudSettings.from_env``). Its first line of
output is its URL, as ``vendgate cloud serve``'s.

    python benchmarks/cloud_floor.py --port 0 --commits 41
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import httpx
import msgspec
import uvicorn
from cloud_fleet import CURRENCY, RESERVED, SLOTS
from litestar import Litestar, Request, Response, get, post
from litestar.response import Redirect
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from vendgate import _loop
from vendgate.cloud.app import cloud_filters
from vendgate.cloud.settings import CloudSettings
from vendgate.cloud.vipps import (
    EPAYMENT_EVENTS,
    Amount,
    BottomLine,
    CreatePaymentRequest,
    OrderLine,
    PaymentMethod,
    Receipt,
    VippsClient,
    WebhookEvent,
    WebhookVerifier,
)
from vendgate.protocol import Money
from vendgate.protocol.mqtt import (
    Ack,
    Authorized,
    CloudPresence,
    Config,
    Dispensed,
    Ended,
    Event,
    Hello,
    Ping,
    Pong,
    Started,
    Status,
    StatusState,
    Telemetry,
    TopicTree,
    decode_for_topic,
)

STEPS = (
    "scan",
    "authorized",
    "started",
    "dispensed",
    "ended",
    "capture",
    "cancel",
    "verify",
    "receipt",
)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS floor_machines (id VARCHAR(64) PRIMARY KEY, "
    "online BOOLEAN NOT NULL, seen_at TIMESTAMP NOT NULL)",
    "CREATE TABLE IF NOT EXISTS floor_vends (id VARCHAR(64) PRIMARY KEY, "
    "machine_id VARCHAR(64) NOT NULL, steps INTEGER NOT NULL, created_at TIMESTAMP NOT NULL, "
    "closed_at TIMESTAMP, outcome VARCHAR(16))",
)
OPEN = "INSERT INTO floor_vends (id, machine_id, steps, created_at) VALUES (:id, :machine, 1, :now)"
STEP = "UPDATE floor_vends SET steps = steps + 1 WHERE id = :id"
CLOSE = (
    "UPDATE floor_vends SET steps = steps + 1, closed_at = :now, outcome = 'paid' WHERE id = :id"
)
SEEN = (
    "INSERT INTO floor_machines (id, online, seen_at) VALUES (:id, :online, :now) "
    "ON CONFLICT (id) DO UPDATE SET online = :online, seen_at = :now"
)
PING_TIMEOUT = 1.5
SQLITE_BUSY_TIMEOUT_MS = 30_000  # as the cloud's engine
log = logging.getLogger("floor")


def commit_plan(commits: int) -> dict[str, int]:
    """``commits`` spread over the steps, at least one where the session opens and closes."""
    commits = max(commits, 2)
    counts = [commits // len(STEPS) + (1 if i < commits % len(STEPS) else 0) for i in range(9)]
    if counts[-1] == 0:  # fewer commits than steps: the closing one comes from the step before
        moved = max(i for i, n in enumerate(counts) if n > 0 and i > 0)
        counts[moved] -= 1
        counts[-1] = 1
    return dict(zip(STEPS, counts, strict=True))


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # stored as UTC, as the cloud stores it


def engine_for(url: str) -> AsyncEngine:
    """PostgreSQL: the plain engine (no pre-ping). SQLite: one connection, so that writers
    queue in the pool instead of in SQLite's busy handler, which sleeps up to 100 ms a try;
    with the cloud's settings otherwise (WAL, busy timeout)."""
    if not url.startswith("sqlite"):
        return create_async_engine(url)
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=300)

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    return engine


class Floor:
    def __init__(self, settings: CloudSettings, commits: int) -> None:
        self.settings = settings
        self.tree = TopicTree(settings.mqtt.prefix)
        self.plan = commit_plan(commits)
        self.engine = engine_for(settings.database.url)
        self.machines: dict[str, str] = {}  # vend id -> machine id
        self.pings: dict[str, asyncio.Future[Pong]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.client: aiomqtt.Client | None = None
        self.verifier: WebhookVerifier | None = None
        self.http = httpx.AsyncClient(timeout=10)
        self.vipps = VippsClient(settings.vipps, self.http)
        self.config = Config.create(
            now=datetime.now(UTC),
            settings={
                "planogram": [{"item": slot.item, "price": slot.price} for slot in SLOTS],
                "price_mode": "planogram",
            },
        ).encode()

    # -- the database -------------------------------------------------------------------------

    async def commit(self, statement: str, **params: Any) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(text(statement), params)

    async def step(self, name: str, vend_id: str, **first: Any) -> None:
        """The step's share of the commits: the session's first opens it, the last closes it."""
        count = self.plan[name]
        for index in range(count):
            if name == "scan" and index == 0:
                await self.commit(OPEN, id=vend_id, now=now(), **first)
            elif name == "receipt" and index == count - 1:
                await self.commit(CLOSE, id=vend_id, now=now())
            else:
                await self.commit(STEP, id=vend_id)

    # -- MQTT ---------------------------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        assert self.client is not None
        await self.client.publish(topic, payload, qos=qos)

    async def listen(self, ready: asyncio.Event) -> None:
        s = self.settings.mqtt
        presence = str(self.tree.cloud_presence())

        def announce(state: StatusState) -> bytes:
            return CloudPresence.create(
                now=datetime.now(UTC), state=state, replica=s.client_id
            ).encode()

        client = aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            identifier=s.client_id,
            clean_session=False,
            will=aiomqtt.Will(presence, announce(StatusState.OFFLINE), 1, True),
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        async with client:
            for topic_filter in cloud_filters(self.tree, shared=s.shared_subscriptions):
                await client.subscribe(str(topic_filter), qos=1)
            await client.publish(presence, announce(StatusState.ONLINE), qos=1, retain=True)
            self.client = client
            ready.set()
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                self.spawn(self.handle(message.topic.value, payload))

    def spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("floor task failed", exc_info=task.exception())

    async def handle(self, topic: str, payload: bytes) -> None:
        parsed = self.tree.parse(topic)
        message = decode_for_topic(parsed, payload)
        machine_id = parsed.machine_id
        if isinstance(message, Pong):
            future = self.pings.get(message.ping_id)
            if future is not None and not future.done():
                future.set_result(message)
        elif isinstance(message, Status):
            online = message.state is StatusState.ONLINE
            await self.commit(SEEN, id=machine_id, online=online, now=now())
        elif isinstance(message, Telemetry):
            await self.commit(SEEN, id=machine_id, online=True, now=now())
        elif isinstance(message, Event):
            await self.event(machine_id, message)

    async def event(self, machine_id: str, event: Event) -> None:
        if isinstance(event, Hello):
            await self.commit(SEEN, id=machine_id, online=True, now=now())
            await self.publish(str(self.tree.command(machine_id, "config")), self.config)
        elif isinstance(event, Started | Dispensed | Ended):
            await self.step(event.topic_name or "", event.vend_id)
        ack = Ack.create(now=datetime.now(UTC), events=[event.id])
        await self.publish(str(self.tree.command(machine_id, "ack")), ack.encode())
        if isinstance(event, Ended):
            await self.settle(event.vend_id, event.total)

    async def settle(self, vend_id: str, total: Money) -> None:
        epayment = self.vipps.epayment
        amount = Amount(total.value, total.currency)
        await epayment.capture(vend_id, amount, idempotency_key=f"{vend_id}-capture")
        await self.step("capture", vend_id)
        await epayment.cancel(vend_id, idempotency_key=f"{vend_id}-cancel")
        await self.step("cancel", vend_id)
        await epayment.get_payment(vend_id)
        await self.step("verify", vend_id)
        slot = SLOTS[0]
        tax = slot.price * slot.vat_rate // (10_000 + slot.vat_rate)
        line = OrderLine(
            name=slot.name,
            id=str(slot.item),
            total_amount=total.value,
            total_amount_excluding_tax=total.value - tax,
            total_tax_amount=tax,
            tax_rate=slot.vat_rate,
        )
        receipt = Receipt(order_lines=[line], bottom_line=BottomLine(currency=total.currency))
        await self.vipps.order_management.post_receipt(vend_id, receipt)
        await self.step("receipt", vend_id)

    # -- HTTP ---------------------------------------------------------------------------------

    async def ping(self, machine_id: str) -> Pong | None:
        sent = datetime.now(UTC)
        ping = Ping.create(now=sent, expires_at=sent + timedelta(seconds=10))
        future: asyncio.Future[Pong] = asyncio.get_running_loop().create_future()
        self.pings[ping.id] = future
        try:
            await self.publish(str(self.tree.command(machine_id, "ping")), ping.encode(), qos=0)
            return await asyncio.wait_for(future, PING_TIMEOUT)
        except TimeoutError:
            return None
        finally:
            del self.pings[ping.id]

    async def scan(self, machine_id: str) -> Response[Any]:
        pong = await self.ping(machine_id)
        if pong is None or not pong.can_vend:
            return Response('<main data-state="busy"></main>', status_code=409)
        vend_id = f"floor-{uuid.uuid4().hex}"
        request = CreatePaymentRequest(
            amount=Amount(RESERVED, CURRENCY),
            reference=vend_id,
            payment_method=PaymentMethod(type="WALLET"),
            customer_interaction="CUSTOMER_PRESENT",
            payment_description=self.settings.payment_description,
            user_flow="WEB_REDIRECT",
            return_url=self.settings.status_url(vend_id),
        )
        created = await self.vipps.epayment.create_payment(
            request, idempotency_key=f"{vend_id}-create"
        )
        self.machines[vend_id] = machine_id
        await self.step("scan", vend_id, machine=machine_id)
        return Redirect(created.redirect_url or "/", status_code=302)

    async def webhook(self, headers: dict[str, str], body: bytes) -> None:
        assert self.verifier is not None
        self.verifier.verify(headers, body)
        event = msgspec.json.decode(body, type=WebhookEvent)
        if event.name != "AUTHORIZED":
            return
        vend_id = event.reference
        payment = await self.vipps.epayment.get_payment(vend_id)  # the webhook is a hint
        await self.step("authorized", vend_id)
        issued = datetime.now(UTC)
        amount = Money(payment.aggregate.authorized_amount.value, CURRENCY)
        command = Authorized.create(
            now=issued, vend_id=vend_id, amount=amount, expires_at=issued + timedelta(minutes=1)
        )
        machine_id = self.machines[vend_id]
        await self.publish(str(self.tree.command(machine_id, "authorized")), command.encode())

    @contextlib.asynccontextmanager
    async def running(self, _: Litestar) -> AsyncIterator[None]:
        async with self.engine.begin() as connection:
            for statement in SCHEMA:
                await connection.execute(text(statement))
        registration = await self.vipps.webhooks.register(
            self.settings.webhook_url, EPAYMENT_EVENTS
        )
        self.verifier = WebhookVerifier(registration.secret, self.settings.webhook_url)
        ready = asyncio.Event()
        link = asyncio.create_task(self.listen(ready))
        await asyncio.wait([link, asyncio.create_task(ready.wait())], return_when="FIRST_COMPLETED")
        if link.done():
            link.result()  # the link failed: raise why
        try:
            yield
        finally:
            link.cancel()
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(link, *self.tasks, return_exceptions=True)
            await self.http.aclose()
            await self.engine.dispose()


def create_floor_app(floor: Floor) -> Litestar:
    @get("/m/{machine_id:str}")
    async def scan(machine_id: str) -> Response[Any]:
        return await floor.scan(machine_id)

    @post("/vipps/webhooks", status_code=200)
    async def webhook(request: Request[Any, Any, Any]) -> None:
        await floor.webhook(dict(request.headers), await request.body())

    # No logging_config: Litestar's default would log every httpx request at INFO.
    return Litestar([scan, webhook], lifespan=[floor.running], logging_config=None)


async def serve(sock: socket.socket, floor: Floor) -> int:
    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    app = create_floor_app(floor)
    server = Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
    async with app.lifespan():
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.02)
        if server.started:
            host, port = sock.getsockname()[:2]
            print(f"http://{host}:{port}", flush=True)
        await serving
    return 0 if server.started else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--commits", type=int, default=len(STEPS), help="commits per purchase")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    # The cloud's own loop (uvloop where installed): the same stack.
    return _loop.run(serve(sock, Floor(CloudSettings.from_env(), args.commits)))


if __name__ == "__main__":
    sys.exit(main())

"""The emulated fleet and its customers: one asyncio process, the benchmark's harness.

- ``Machine``: a vending machine on MQTT speaking wire format v1 as any firmware implementing
  docs/mqtt-contract.md would: its own login, a persistent session, a retained ``status`` with
  an ``offline`` will (both with their seq), ``hello`` on every connect; it answers ``cmd/ping``
  with ``evt/pong`` at once, starts a session on ``cmd/authorized`` (a repeat re-publishes the
  vend's latest event, as the edge does), reports ``dispensed`` and ``ended`` when its customer
  has chosen, keeps every event until ``cmd/ack`` and re-sends it every 15 s (and when a cloud
  replica announces itself), and sends ``telemetry`` every 60 s: the edge agent's defaults.
- ``Customers.purchase``: a phone scans ``GET /m/{id}`` (302 to the simulator's landing page),
  approves there (``POST /sim/landing/{token}/approve``, what the Approve button does), waits
  for its machine to start, chooses item 1 and waits until the session is closed in the
  database (``Settlements``). Each step's time is kept in a ``Purchase``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import socket
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiomqtt
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from vendgate.cloud.machines import SlotSpec
from vendgate.protocol import Money, reconnect_delay
from vendgate.protocol.mqtt import (
    Ack,
    Authorized,
    Cancel,
    CloudPresence,
    Config,
    ContractError,
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
    Telemetry,
    TopicTree,
    decode_for_topic,
)

CURRENCY = "NOK"
ITEM, PRICE, RESERVED = 1, 2500, 3500  # the customer buys item 1; the scan reserves the top price
SLOTS = (SlotSpec(ITEM, "Cola 0.5 l", PRICE), SlotSpec(2, "Sandwich", RESERVED))
# The edge agent's defaults (edge/_config.py); the reconnect cap is shorter than its 60 s so
# that a refused storm still ends within a run.
RESEND_INTERVAL = 15.0
TELEMETRY_INTERVAL = 60.0
KEEPALIVE = 30
RECONNECT_MIN, RECONNECT_MAX = 0.5, 10.0
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
DATA_STATE = re.compile(rb'data-state="([a-z_]+)"')

# aiomqtt warns of >10 publishes in flight, paho of every connection the broker dropped: the
# machines reconnect and count it.
logging.getLogger("mqtt").setLevel(logging.CRITICAL)


def quiet_lost_connections(loop: asyncio.AbstractEventLoop) -> None:
    """aiomqtt leaves the future of a dropped connection unretrieved, and its read callback can
    raise CancelledError once the client is gone; the machine reconnects and counts it, so
    asyncio's lines about either are noise."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), aiomqtt.MqttError | asyncio.CancelledError):
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class Purchase:
    """One customer at one machine; times are ``time.monotonic()`` unless named ``_wall``."""

    machine_id: str
    base_url: str  # the cloud replica (or the floor) the phone scanned at
    scan_at: float
    scan_wall: float
    scan_s: float | None = None
    scanned: bool = False  # answered 302
    refused: str | None = None  # why it went no further (scan answer, approval, ...)
    approve_at: float | None = None
    approve_wall: float | None = None
    authorized_at: float | None = None
    authorized_wall: float | None = None
    vend_id: str | None = None
    reserved: int | None = None
    resends: int = 0  # `authorized` re-sent to the machine for this vend
    ended_wall: float | None = None
    settled_wall: float | None = None
    outcome: str | None = None
    authorized: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def approve_to_authorized_s(self) -> float | None:
        if self.approve_at is None or self.authorized_at is None:
            return None
        return self.authorized_at - self.approve_at

    @property
    def ended_to_settled_s(self) -> float | None:
        if self.ended_wall is None or self.settled_wall is None:
            return None
        return self.settled_wall - self.ended_wall

    @property
    def stage(self) -> str:
        """How far it got: ``settled``, or the step it was waiting for when the run ended."""
        if self.refused is not None:
            return f"refused: {self.refused}"
        if self.settled_wall is not None:
            return "settled"
        if self.ended_wall is not None:
            return "ended, not settled"
        if self.authorized_at is not None:
            return "authorized, not ended"
        if self.approve_at is not None:
            return "approved, never authorized at the machine"
        return "scanning"


@dataclass
class FleetStats:
    """What the machines saw, fleet-wide; ``reset`` at the start of a measurement."""

    authorized_resends: int = 0
    event_resends: int = 0
    connect_failures: int = 0
    pongs: int = 0
    configs: int = 0
    cancels: int = 0
    undecodable: int = 0
    ping_s: list[float] = field(default_factory=list)  # a ping's ts to its arrival here
    ack_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


@dataclass
class BrokerLogin:
    host: str
    port: int
    logins: bool  # False: the anonymous embedded broker

    def password(self, machine_id: str) -> str | None:
        from cloud_stack import machine_password

        return machine_password(machine_id) if self.logins else None


@dataclass
class Pending:
    topic: str
    payload: bytes
    name: str
    first_sent: float
    last_sent: float


class Machine:
    """One machine's MQTT side. ``run`` keeps it connected (reconnecting with back-off)."""

    def __init__(self, machine_id: str, broker: BrokerLogin, stats: FleetStats) -> None:
        self.id = machine_id
        self.broker = broker
        self.stats = stats
        self.tree = TopicTree()
        self.boot_id = f"bench-{uuid.uuid4().hex[:8]}"
        self.status_topic = str(self.tree.status(machine_id))
        self.presence_topic = str(self.tree.cloud_presence())
        self.seq = 0
        self.attempt = 0  # connects of this boot: online says 2k, the will 2k+1
        self.outbox: dict[str, Pending] = {}
        self.vends: dict[str, Pending | None] = {}  # vend id -> its latest event
        self.open_vend: str | None = None
        self.customer: Purchase | None = None  # waiting for its `authorized`
        self.purchases: dict[str, Purchase] = {}
        self.client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.connected_at: float | None = None
        self.presence_seen: str | None = None
        self.prices: dict[int, int] = {}
        self.next_telemetry = time.monotonic() + random.uniform(0, TELEMETRY_INTERVAL)
        self.started = time.monotonic()

    # -- the connection -------------------------------------------------------------------------

    def _status(self, state: StatusState) -> bytes:
        seq = 2 * self.attempt + (1 if state is StatusState.OFFLINE else 0)
        return Status.create(
            now=utc_now(), state=state, boot_id=self.boot_id, versions={"agent": "bench"}, seq=seq
        ).encode()

    def _new_client(self) -> aiomqtt.Client:
        self.attempt += 1
        will = aiomqtt.Will(self.status_topic, self._status(StatusState.OFFLINE), 1, True)
        return aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username=self.id,
            password=self.broker.password(self.id),
            identifier=self.id,
            clean_session=False,
            will=will,
            keepalive=KEEPALIVE,
            socket_options=NODELAY,
            timeout=30,
        )

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                async with self._new_client() as client:
                    await self._on_connect(client)
                    failures = 0
                    await self._listen(client)
            except aiomqtt.MqttError:
                self.stats.connect_failures += 1
                failures += 1
            finally:
                self.client = None
                self.connected.clear()
            await asyncio.sleep(reconnect_delay(failures, base=RECONNECT_MIN, cap=RECONNECT_MAX))

    async def _on_connect(self, client: aiomqtt.Client) -> None:
        for topic_filter in self.tree.edge_filters(self.id):
            await client.subscribe(str(topic_filter), qos=1)
        await client.publish(self.status_topic, self._status(StatusState.ONLINE), 1, retain=True)
        self.client = client
        if self.connected_at is None:
            self.connected_at = time.monotonic()
        self.connected.set()
        open_vends = [self.open_vend] if self.open_vend else []
        unacked = list(self.outbox.values())
        await self.emit(Hello, boot_id=self.boot_id, open_vends=open_vends, outbox=len(unacked))
        for pending in unacked:  # as the edge does on every connect
            await self._publish(pending.topic, pending.payload)

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes) else b""
            try:
                if topic == self.presence_topic:
                    await self._presence(CloudPresence.decode(payload))
                else:
                    await self._command(decode_for_topic(self.tree.parse(topic), payload))
            except ContractError:
                self.stats.undecodable += 1

    async def _publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        client = self.client
        if client is None:
            return  # offline: the outbox sends it again on the next connect
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(topic, payload, qos=qos)

    async def emit(self, kind: type[Event], **fields: Any) -> Pending:
        """Publish an event and keep it until the cloud acks it."""
        self.seq += 1
        event = kind.create(now=utc_now(), seq=self.seq, **fields)  # type: ignore[attr-defined]
        name = kind.topic_name or ""
        now = time.monotonic()
        pending = Pending(str(self.tree.event(self.id, name)), event.encode(), name, now, now)
        self.outbox[event.id] = pending
        await self._publish(pending.topic, pending.payload)
        return pending

    async def resend_due(self, now: float) -> None:
        for pending in list(self.outbox.values()):
            if now - pending.last_sent >= RESEND_INTERVAL:
                pending.last_sent = now
                self.stats.event_resends += 1
                await self._publish(pending.topic, pending.payload)

    async def telemetry_due(self, now: float) -> None:
        if now < self.next_telemetry or self.client is None:
            return
        self.next_telemetry = now + TELEMETRY_INTERVAL
        telemetry = Telemetry.create(
            now=utc_now(),
            uptime_s=int(now - self.started),
            board="enabled",
            outbox=len(self.outbox),
        )
        await self._publish(str(self.tree.telemetry(self.id)), telemetry.encode(), qos=0)

    # -- what the cloud says --------------------------------------------------------------------

    async def _presence(self, presence: CloudPresence) -> None:
        """A replica connected: it may have missed what we sent, so re-send it all now."""
        if presence.state is not StatusState.ONLINE or presence.id == self.presence_seen:
            return
        self.presence_seen = presence.id
        for pending in list(self.outbox.values()):
            await self._publish(pending.topic, pending.payload)

    async def _command(self, command: Any) -> None:
        if isinstance(command, Ping):
            await self._pong(command)
        elif isinstance(command, Ack):
            now = time.monotonic()
            for event_id in command.events:
                pending = self.outbox.pop(event_id, None)
                if pending is not None:
                    self.stats.ack_s[pending.name].append(now - pending.first_sent)
        elif isinstance(command, Authorized):
            await self._authorized(command)
        elif isinstance(command, Config):
            self.stats.configs += 1
            for entry in command.settings.get("planogram", []):
                self.prices[int(entry["item"])] = int(entry["price"])
        elif isinstance(command, Cancel):
            self.stats.cancels += 1
            if command.vend_id == self.open_vend:
                await self._end(command.vend_id, EndReason.CANCELLED, [])

    async def _pong(self, ping: Ping) -> None:
        arrived = utc_now()
        self.stats.ping_s.append((arrived - ping.ts).total_seconds())
        if ping.is_expired(arrived):
            return
        self.stats.pongs += 1
        pong = Pong.create(
            now=utc_now(),
            ping_id=ping.id,
            boot_id=self.boot_id,
            board="enabled",
            can_vend=self.open_vend is None,
            open_vends=[self.open_vend] if self.open_vend else [],
        )
        await self._publish(str(self.tree.event(self.id, "pong")), pong.encode())

    async def _authorized(self, command: Authorized) -> None:
        vend_id = command.vend_id
        if vend_id in self.vends:
            # The cloud re-sent it: it has not seen our answer yet. Tell it again, as the edge
            # does (the latest event of that vend, same id).
            self.stats.authorized_resends += 1
            if vend_id in self.purchases:
                self.purchases[vend_id].resends += 1
            latest = self.vends[vend_id]
            if latest is not None:
                await self._publish(latest.topic, latest.payload)
            return
        arrived = time.monotonic()
        if command.is_expired(utc_now()) or self.open_vend is not None:
            reason = RejectReason.EXPIRED if self.open_vend is None else RejectReason.BUSY
            self.vends[vend_id] = await self.emit(Rejected, vend_id=vend_id, reason=reason)
            return
        self.open_vend = vend_id
        customer, self.customer = self.customer, None
        if customer is not None:
            customer.vend_id, customer.authorized_at = vend_id, arrived
            customer.authorized_wall = time.time()
            customer.reserved = command.amount.value
            self.purchases[vend_id] = customer
        self.vends[vend_id] = None
        self.vends[vend_id] = await self.emit(Started, vend_id=vend_id, funds=command.amount)
        if customer is not None and not customer.authorized.done():
            customer.authorized.set_result(None)

    async def vend(self, purchase: Purchase) -> None:
        """The customer chose item 1: it drops, the VMC ends the session."""
        assert purchase.vend_id is not None
        price = Money(self.prices.get(ITEM, PRICE), CURRENCY)
        line = DispensedItem(item=ITEM, price=price, success=True)
        vend_id = purchase.vend_id
        await self.emit(Dispensed, vend_id=vend_id, item=ITEM, price=price, success=True)
        await self._end(vend_id, EndReason.COMPLETED, [line])
        purchase.ended_wall = time.time()

    async def _end(self, vend_id: str, reason: EndReason, lines: list[DispensedItem]) -> None:
        ended = await self.emit(
            Ended, vend_id=vend_id, reason=reason, dispensed=lines, currency=CURRENCY
        )
        self.vends[vend_id] = ended
        if self.open_vend == vend_id:
            self.open_vend = None


class Fleet:
    """Every machine of the run, and the timers they share (re-sends, telemetry)."""

    def __init__(self, ids: Sequence[str], broker: BrokerLogin) -> None:
        self.stats = FleetStats()
        self.machines = {machine_id: Machine(machine_id, broker, self.stats) for machine_id in ids}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Connect every machine, all together (on amqtt too: vendgate/_amqtt_fixes.py)."""
        for machine in self.machines.values():
            self._tasks.append(asyncio.create_task(machine.run()))
        self._tasks.append(asyncio.create_task(self._timers()))

    def connected(self) -> int:
        return sum(1 for machine in self.machines.values() if machine.connected.is_set())

    def unacked(self) -> int:
        return sum(len(machine.outbox) for machine in self.machines.values())

    def configured(self) -> int:
        return sum(1 for machine in self.machines.values() if machine.prices)

    async def _timers(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for machine in list(self.machines.values()):
                await machine.resend_due(now)
                await machine.telemetry_due(now)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


# -- the database: when a session is closed -------------------------------------------------------


def as_wall(value: object) -> float:
    """A database timestamp (UTC, naive; SQLite gives text) as seconds since the epoch."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC).timestamp() if value.tzinfo is None else value.timestamp()


class Settlements:
    """Polls the app's database every 0.1 s for sessions that are closed: ``closed_at`` and
    ``outcome`` of ``table`` (the cloud's ``vend_sessions``, the floor's ``floor_vends``).
    One read-only query per poll (rolled back, so it adds nothing to ``xact_commit``)."""

    def __init__(self, url: str, table: str, machines_table: str) -> None:
        self.engine: AsyncEngine = create_async_engine(url)
        self.table, self.machines_table = table, machines_table
        self.waiting: dict[str, asyncio.Future[tuple[float, str | None]]] = {}
        self._query = text(
            f"SELECT id, closed_at, outcome FROM {table} "  # our own table names
            "WHERE closed_at IS NOT NULL AND id IN :ids"
        ).bindparams(bindparam("ids", expanding=True))
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def closed(self, vend_id: str) -> tuple[float, str | None]:
        future = self.waiting.get(vend_id)
        if future is None:
            future = self.waiting[vend_id] = asyncio.get_running_loop().create_future()
        return await future

    async def online(self) -> int:
        query = text(f"SELECT count(*) FROM {self.machines_table} WHERE online")
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def rows(self, query: str, ids: Sequence[str]) -> list[Sequence[Any]]:
        """``query`` (with ``IN :ids``) for ``ids``, 500 at a time."""
        statement = text(query).bindparams(bindparam("ids", expanding=True))
        found: list[Sequence[Any]] = []
        async with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                result = await connection.execute(
                    statement, {"ids": list(ids[start : start + 500])}
                )
                found.extend(tuple(row) for row in result)
        return found

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.1)  # polling another process's database
            ids = [vend_id for vend_id, future in self.waiting.items() if not future.done()]
            for start in range(0, len(ids), 500):
                async with self.engine.connect() as connection:
                    rows = await connection.execute(self._query, {"ids": ids[start : start + 500]})
                    for vend_id, closed_at, outcome in rows:
                        future = self.waiting.pop(vend_id)
                        future.set_result((as_wall(closed_at), outcome))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.engine.dispose()


# -- the customers ----------------------------------------------------------------------------


class HttpError(OSError):
    """A request that got no answer (the connection failed or closed)."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Http:
    """The phones' HTTP/1.1 client: keep-alive connections per host, bodies by Content-Length
    or chunked. Two requests per purchase need no more, and httpx's pool costs ~2 ms of CPU a
    request with hundreds of connections open (its bookkeeping scans them all): most of a
    harness that should cost far less than what it measures."""

    IDLE_LIMIT = 4.0  # uvicorn closes a connection idle for 5 s; never reuse one near that

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[tuple[float, Any, Any]]] = defaultdict(list)

    async def request(self, method: str, url: str) -> Answer:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        reader, writer = await self._connection(host, port)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        head = f"{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n\r\n"
        try:
            writer.write(head.encode())
            answer = await self._read(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            writer.close()
            raise HttpError(f"{method} {parts.path}: {type(exc).__name__}") from exc
        if answer.headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle[(host, port)].append((time.monotonic(), reader, writer))
        return answer

    async def _connection(self, host: str, port: int) -> tuple[Any, Any]:
        idle = self._idle[(host, port)]
        while idle:
            since, reader, writer = idle.pop()
            if time.monotonic() - since < self.IDLE_LIMIT and not reader.at_eof():
                return reader, writer
            writer.close()
        reader, writer = await asyncio.open_connection(host, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    @staticmethod
    async def _read(reader: Any) -> Answer:
        status_line = await reader.readline()
        if not status_line:
            raise HttpError("connection closed before an answer")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await reader.readline()).split(b";")[0], 16):
                chunks.append(await reader.readexactly(size))
                await reader.readline()
            await reader.readline()
            body = b"".join(chunks)
        else:
            body = b""
        return Answer(status, headers, body)

    def close(self) -> None:
        for connections in self._idle.values():
            for _, _, writer in connections:
                writer.close()
        self._idle.clear()


class Customers:
    """Phones: they scan at ``base_urls`` (round robin, as a load balancer would spread them)
    and approve at the simulator; ``think`` seconds before approving and before choosing."""

    def __init__(
        self, base_urls: Sequence[str], sim_url: str, settlements: Settlements, think: float
    ) -> None:
        self.base_urls = list(base_urls)
        self.sim_url = sim_url
        self.settlements = settlements
        self.think = think
        self.purchases: list[Purchase] = []
        self.http = Http()
        self._next = 0

    async def purchase(self, machine: Machine) -> Purchase:
        base = self.base_urls[self._next % len(self.base_urls)]
        self._next += 1
        purchase = Purchase(machine.id, base, time.monotonic(), time.time())
        self.purchases.append(purchase)
        machine.customer = purchase
        try:
            await self._buy(machine, purchase)
        except HttpError as exc:
            purchase.refused = str(exc)
        finally:
            if machine.customer is purchase:
                machine.customer = None
        return purchase

    async def _buy(self, machine: Machine, purchase: Purchase) -> None:
        response = await self.http.request("GET", f"{purchase.base_url}/m/{machine.id}")
        purchase.scan_s = time.monotonic() - purchase.scan_at
        if response.status != 302:
            state = DATA_STATE.search(response.body)
            shown = state[1].decode() if state else "?"
            purchase.refused = f"scan answered {response.status} ({shown})"
            return
        purchase.scanned = True
        token = parse_qs(urlsplit(response.headers["location"]).query).get("token", [""])[0]
        await asyncio.sleep(self.think)
        purchase.approve_at, purchase.approve_wall = time.monotonic(), time.time()
        approve = f"{self.sim_url}/sim/landing/{quote(token, safe='')}/approve"
        approved = await self.http.request("POST", approve)
        if approved.status != 303:
            purchase.refused = f"approval answered {approved.status}"
            return
        await purchase.authorized
        await asyncio.sleep(self.think)
        await machine.vend(purchase)
        assert purchase.vend_id is not None
        purchase.settled_wall, purchase.outcome = await self.settlements.closed(purchase.vend_id)

    async def aclose(self) -> None:
        self.http.close()


async def drive(
    customers: Customers,
    fleet: Fleet,
    rate: float,
    duration: float,
    rng: random.Random,
) -> tuple[list[asyncio.Task[Purchase]], int]:
    """Customers arrive for ``duration`` s: a Poisson stream of ``rate`` per second at a free
    machine picked at random (an arrival finding none is skipped and counted), or with
    ``rate`` 0 every machine's next customer as soon as it is free. Returns the purchases'
    tasks (some still running) and the number of skipped arrivals."""
    free = list(fleet.machines.values())
    rng.shuffle(free)
    tasks: list[asyncio.Task[Purchase]] = []
    skipped = 0
    start = time.monotonic()
    end = start + duration

    loop = asyncio.get_running_loop()
    # Back to back (rate 0), a machine's next customer comes after a pause: a refused scan
    # must not turn into a busy loop.
    pause = customers.think if rate <= 0 else 0.0

    def launch(machine: Machine) -> None:
        task = asyncio.create_task(customers.purchase(machine))
        task.add_done_callback(lambda _: loop.call_later(pause, free.append, machine))
        tasks.append(task)

    if rate <= 0:
        while time.monotonic() < end:
            while free:
                launch(free.pop())
            await asyncio.sleep(0.01)  # machines come free as their purchases finish
        return tasks, 0
    arrival = start
    while True:
        arrival += rng.expovariate(rate)
        if arrival >= end:
            return tasks, skipped
        await asyncio.sleep(max(0.0, arrival - time.monotonic()))
        if not free:
            skipped += 1
            continue
        index = rng.randrange(len(free))
        free[index], free[-1] = free[-1], free[index]
        launch(free.pop())


def stages(purchases: Iterable[Purchase]) -> Counter[str]:
    return Counter(purchase.stage for purchase in purchases)

"""Shared helpers for the edge agent tests, handed out as fixtures.

``core_harness`` drives the pure core the way the agent does (every ``Persist`` is committed to a
``MemoryStore`` before the next input) with a ``ManualClock``, moved by ``advance``.

``broker`` is the broker an agent test runs against, parametrized over the embedded amqtt and
the real mosquitto (marked with their tiers); a test module that is about one broker overrides it
(``broker`` returning ``on_amqtt`` or ``on_mosquitto``). ``scene`` puts one machine's agent and
the cloud on that broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar
from urllib.parse import urlsplit

import aiomqtt
import pytest
from support.machine import LogLines, LogLinesHandler
from support.mosquitto import CLOUD_PASSWORD, CLOUD_USER, Mosquitto, machine_password

from vendgate.boardsim import DEFAULT_SLOTS
from vendgate.broker import EmbeddedBroker
from vendgate.edge import (
    CashlessDevice,
    EdgeAgent,
    EdgeConfig,
    Faults,
    MemoryStore,
    SqliteStore,
    Store,
    no_faults,
)
from vendgate.edge.cashless import (
    ApprovalSent,
    CashlessConfig,
    LocalMdbError,
    ReaderEvent,
    SessionEnded,
    SessionStarted,
    VendFailed,
    VendRequested,
    VendSucceeded,
)
from vendgate.edge.core import (
    Action,
    AgentCore,
    Board,
    Booted,
    CommandArrived,
    Connected,
    Input,
    ItemApproved,
    ItemResult,
    Log,
    Persist,
    Publish,
    SessionFunded,
)
from vendgate.protocol import ManualClock, Money
from vendgate.protocol.mqtt import (
    Ack,
    Authorized,
    Command,
    Config,
    EndReason,
    Event,
    Message,
    TopicTree,
    decode,
    decode_for_topic,
)

if TYPE_CHECKING:
    from vendgate.edge.cashless import PriceMode

M = TypeVar("M", bound=Message)

MACHINE = "m1"
# The board simulator's default slots as a planogram: the prices it asks are the planogram's.
BOARD_PRICES = {slot.item: slot.price for slot in DEFAULT_SLOTS}
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
READY = Board(state="enabled", link_up=True, can_begin_session=True)


@dataclass
class CoreHarness:
    store: Store = field(default_factory=MemoryStore)
    clock: ManualClock = field(default_factory=lambda: ManualClock(T0))
    boot_count: int = 0
    core: AgentCore = field(init=False)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> list[Action]:
        """A new process on the same store: load, then boot."""
        self.core = AgentCore(machine_id=MACHINE, currency="NOK", snapshot=self.store.load())
        self.boot_count += 1
        return self.feed(Booted(f"boot-{self.boot_count}", {"agent": "test"}))

    def feed(self, event: Input) -> list[Action]:
        actions = self.core.handle(event, self.now)
        for action in actions:
            if isinstance(action, Persist):
                self.store.commit(action.commit)
        return actions

    def command(self, message: Command, board: Board = READY) -> list[Action]:
        assert message.topic_name is not None
        return self.feed(CommandArrived(message.topic_name, message.encode(), board))

    def connect(self) -> list[Action]:
        return self.feed(Connected())

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # -- helpers for the tests (fixtures are the only way to share them here) -----------------

    READY = READY
    MACHINE = MACHINE

    def authorized(
        self, vend_id: str = "v1", value: int = 2500, currency: str = "NOK", ttl_s: float = 120
    ) -> Authorized:
        return Authorized.create(
            now=self.now,
            vend_id=vend_id,
            amount=Money(value, currency),
            expires_at=self.now + timedelta(seconds=ttl_s),
        )

    @staticmethod
    def published(actions: Sequence[Action], name: str | None = None) -> list[Message]:
        """The messages the actions publish (decoded), optionally only those on ``name``."""
        return [
            decode(a.name, a.payload)
            for a in actions
            if isinstance(a, Publish) and (name is None or a.name == name)
        ]

    @staticmethod
    def logged(actions: Sequence[Action]) -> list[str]:
        return [a.event for a in actions if isinstance(a, Log)]

    def run_vend(self, vend_id: str = "v1", item: int = 3, price: int = 2000) -> list[Action]:
        """authorized, session, one successful item, session complete: all the actions."""
        actions = self.command(self.authorized(vend_id))
        actions += self.feed(SessionFunded(2500))
        actions += self.feed(ItemApproved(item, price))
        actions += self.feed(ItemResult(item, price, success=True))
        actions += self.feed(SessionEnded(EndReason.COMPLETED))
        return actions


@pytest.fixture
def harness() -> CoreHarness:
    return CoreHarness()


@pytest.fixture
def online(harness: CoreHarness) -> CoreHarness:
    harness.connect()
    return harness


@pytest.fixture
def make_harness() -> Callable[..., CoreHarness]:
    return CoreHarness


# -- a fake reader with SerialCashless's surface, and the cloud's side of MQTT -----------------


class FakeCashless:
    """The reader's surface in memory; tests play the customer with ``vend()`` and ``end()``."""

    def __init__(self, state: str = "enabled", link_up: bool = True, fail_opens: int = 0) -> None:
        self.config = CashlessConfig()
        self.fail_opens = fail_opens  # the port is missing for this many attempts
        self.opened = False
        self.state = state
        self.link_up = link_up
        self.begun: list[int] = []
        self.cancels = 0
        self.selection_timeout_s: float | None = None
        self.pricing: tuple[PriceMode, dict[int, int] | None] | None = None
        self._queue: asyncio.Queue[ReaderEvent | None] = asyncio.Queue()

    @property
    def can_begin_session(self) -> bool:
        return self.state == "enabled" and self.link_up

    def begin_session(self, funds: int) -> None:
        if not self.can_begin_session:
            raise LocalMdbError(f"cannot begin a session in state {self.state}")
        self.begun.append(funds)
        self.state = "session_idle"
        self._emit(SessionStarted(funds))

    def cancel_session(self) -> None:
        if self.state != "session_idle":
            raise LocalMdbError(f"no idle session to cancel in state {self.state}")
        self.cancels += 1
        self.end(EndReason.CANCELLED)

    def set_selection_timeout(self, seconds: float) -> None:
        self.selection_timeout_s = seconds

    def set_pricing(self, mode: PriceMode, planogram: Mapping[int, int] | None) -> None:
        self.pricing = (mode, None if planogram is None else dict(planogram))

    def vend(self, item: int, price: int, success: bool = True) -> None:
        """The VMC asks ``price`` for ``item`` and this fake approves it (no pricing applied)."""
        self._emit(VendRequested(price, item))
        self._emit(ApprovalSent(price, item, price))
        self._emit(VendSucceeded(item, price, price) if success else VendFailed(item, price, price))

    def end(self, reason: EndReason = EndReason.COMPLETED) -> None:
        self.state = "enabled"
        self._emit(SessionEnded(reason))

    def _emit(self, event: ReaderEvent) -> None:
        self._queue.put_nowait(event)

    async def events(self) -> AsyncIterator[ReaderEvent]:
        while (event := await self._queue.get()) is not None:
            yield event

    async def __aenter__(self) -> FakeCashless:
        if self.fail_opens:
            self.fail_opens -= 1
            raise OSError("could not open port /dev/ttyUSB0")
        self.opened = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._queue.put_nowait(None)


class Cloud:
    """The test's cloud: a plain aiomqtt client that sends commands and collects events.

    ``committed`` is an idempotent consumer's view: each event id once, in arrival order.
    """

    def __init__(self, client: aiomqtt.Client, machine_id: str, prefix: str = "vend/v1") -> None:
        self.client = client
        self.machine_id = machine_id
        self.tree = TopicTree(prefix)
        self.received: list[Message] = []
        self.committed: dict[str, Message] = {}
        self._arrivals: asyncio.Queue[Message] = asyncio.Queue()

    async def subscribe(self) -> None:
        """Returns once the broker's SUBACK came: from then on nothing of the machine is missed."""
        for topic_filter in (
            f"{self.tree.prefix}/{self.machine_id}/evt/+",
            str(self.tree.status(self.machine_id)),
            str(self.tree.telemetry(self.machine_id)),
        ):
            await self.client.subscribe(topic_filter, qos=1)

    async def listen(self) -> None:
        async for raw in self.client.messages:
            parsed = self.tree.parse(str(raw.topic))
            message = decode_for_topic(parsed, bytes(raw.payload))  # type: ignore[arg-type]
            self.received.append(message)
            if isinstance(message, Event):
                self.committed.setdefault(message.id, message)
            self._arrivals.put_nowait(message)

    async def send(self, command: Command) -> None:
        assert command.topic_name is not None
        topic = self.tree.command(self.machine_id, command.topic_name)
        await self.client.publish(str(topic), command.encode(), qos=1)

    async def next(self, kind: type[M], within_s: float = 10.0) -> M:
        """The next message of ``kind`` (others that arrive meanwhile are skipped)."""
        async with asyncio.timeout(within_s):
            while True:
                message = await self._arrivals.get()
                if isinstance(message, kind):
                    return message

    async def ack(self, *events: Message) -> None:
        await self.send(Ack.create(now=datetime.now(UTC), events=[e.id for e in events]))

    async def send_planogram(
        self, prices: Mapping[int, int] = BOARD_PRICES, mode: str = "planogram"
    ) -> None:
        """``cmd/config`` with the planogram (item -> minor units), as the cloud sends on hello.

        Without one the agent refuses every vend; commands are handled in order, so anything
        sent after this finds it applied."""
        planogram = [{"item": item, "price": price} for item, price in prices.items()]
        settings = {"planogram": planogram, "price_mode": mode}
        await self.send(Config.create(now=datetime.now(UTC), settings=settings))

    def events_of(self, vend_id: str) -> list[Event]:
        """The committed events of one vend, in seq order."""
        found = [e for e in self.committed.values() if getattr(e, "vend_id", None) == vend_id]
        return sorted(found, key=lambda event: event.seq)


def fresh_authorized(vend_id: str, value: int = 2500, ttl_s: float = 120) -> Authorized:
    now = datetime.now(UTC)
    return Authorized.create(
        now=now,
        vend_id=vend_id,
        amount=Money(value, "NOK"),
        expires_at=now + timedelta(seconds=ttl_s),
    )


@asynccontextmanager
async def cloud_client(url: str, machine_id: str, **login: str) -> AsyncIterator[Cloud]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    async with aiomqtt.Client(
        parts.hostname,
        parts.port or 1883,
        identifier=f"test-cloud-{uuid.uuid4().hex[:8]}",
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        **login,  # type: ignore[arg-type]
    ) as client:
        cloud = Cloud(client, machine_id)
        await cloud.subscribe()  # aiomqtt queues what arrives until listen() iterates
        listener = asyncio.create_task(cloud.listen())
        try:
            yield cloud
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await listener


@pytest.fixture
def fake_cashless() -> type[FakeCashless]:
    return FakeCashless


@pytest.fixture
def cloud_for() -> Callable[..., AbstractAsyncContextManager[Cloud]]:
    """``async with cloud_for(url, "m1", username=..., password=...) as cloud``."""
    return cloud_client


@pytest.fixture
def authorized_now() -> Callable[..., Authorized]:
    return fresh_authorized


def make_edge_config(
    url: str, data_dir: Path, machine_id: str = "m1", **overrides: str
) -> EdgeConfig:
    """A config for tests: fast resends and reconnects, no serial port needed by fakes."""
    flags = {
        "machine_id": machine_id,
        "mqtt_url": url,
        "serial": "loop://",
        "data_dir": str(data_dir),
        "resend_interval_s": "0.5",
        "telemetry_interval_s": "0.5",
        "reconnect_min_s": "0.1",
        "reconnect_max_s": "0.5",
        "keepalive_s": "5",
        **overrides,
    }
    return EdgeConfig.load(flags, {})


@asynccontextmanager
async def running_agent(
    config: EdgeConfig,
    device: CashlessDevice,
    store: Store | None = None,
    faults: Faults = no_faults,
) -> AsyncIterator[EdgeAgent]:
    """The agent running in this loop until the block ends (then stopped cleanly)."""
    store = store or SqliteStore(config.outbox_path)
    agent = EdgeAgent(config, device=device, store=store, faults=faults)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await wait_until(lambda: agent.link.connected or task.done())
        if task.done():
            task.result()
        yield agent
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task


async def wait_until(condition: Callable[[], bool], within_s: float = 10.0) -> None:
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110  # polling state owned by other tasks
            await asyncio.sleep(0.02)


@pytest.fixture
def agent_log() -> Iterator[LogLines]:
    """What the agents in this process log on ``vendgate.edge``, DEBUG lines included."""
    log = LogLines()
    handler = LogLinesHandler(log)
    logger = logging.getLogger("vendgate.edge")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield log
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def edge_config() -> Callable[..., EdgeConfig]:
    return make_edge_config


@pytest.fixture
def agent_running() -> Callable[..., AbstractAsyncContextManager[EdgeAgent]]:
    return running_agent


@pytest.fixture
def waiter() -> Callable[..., Awaitable[None]]:
    return wait_until


# -- one broker (amqtt or mosquitto) and one machine's agent and cloud on it -------------------


@dataclass
class MqttBroker:
    """A running broker: where to connect, the logins it wants, and how to bounce it.

    ``stop()`` then ``start()`` brings it back on the same port (mosquitto with its persistent
    sessions; amqtt as a fresh broker, which keeps none).
    """

    name: str
    url: str
    machine_id: str
    agent_flags: dict[str, str]  # EdgeConfig flags beyond the URL: the machine's password
    cloud_login: dict[str, str]
    stop: Callable[[], Awaitable[None]]
    start: Callable[[], Awaitable[None]]


@pytest.fixture
async def on_amqtt(amqtt_broker: EmbeddedBroker) -> AsyncIterator[MqttBroker]:
    port = amqtt_broker.port
    assert port is not None
    replacements: list[EmbeddedBroker] = []

    async def start() -> None:
        replacement = EmbeddedBroker(port=port)
        await replacement.start()
        replacements.append(replacement)

    async def stop() -> None:
        for running in (amqtt_broker, *replacements):
            await running.stop()

    yield MqttBroker("amqtt", amqtt_broker.url, "m1", {}, {}, stop, start)
    for replacement in replacements:
        await replacement.stop()


@pytest.fixture
def on_mosquitto(mosquitto: Mosquitto) -> MqttBroker:
    return MqttBroker(
        "mosquitto",
        mosquitto.url,
        "m2",
        {"mqtt_password": machine_password("m2")},
        {"username": CLOUD_USER, "password": CLOUD_PASSWORD},
        lambda: asyncio.to_thread(mosquitto.stop),
        lambda: asyncio.to_thread(mosquitto.start),
    )


@pytest.fixture(
    params=[
        # The tier markers by hand: tests/conftest.py marks from the fixtures a test names, and
        # these are only requested at run time.
        pytest.param("amqtt", marks=pytest.mark.amqtt),
        pytest.param("mosquitto", marks=pytest.mark.mosquitto),
    ]
)
def broker(request: pytest.FixtureRequest) -> MqttBroker:
    found: MqttBroker = request.getfixturevalue(f"on_{request.param}")
    return found


@dataclass
class EdgeScene:
    """One machine on ``broker``: its config, a fake reader, the cloud, the running agent.

    ``async with scene.cloud() as cloud, scene.agent(reader) as agent: ...``
    """

    broker: MqttBroker
    config: EdgeConfig
    reader: ClassVar[type[FakeCashless]] = FakeCashless  # ``scene.reader(fail_opens=1)``

    @property
    def machine_id(self) -> str:
        return self.broker.machine_id

    def cloud(self) -> AbstractAsyncContextManager[Cloud]:
        return cloud_client(self.broker.url, self.machine_id, **self.broker.cloud_login)

    def agent(
        self, device: CashlessDevice | None = None, store: Store | None = None
    ) -> AbstractAsyncContextManager[EdgeAgent]:
        return running_agent(self.config, device or FakeCashless(), store)


@pytest.fixture
def scene(broker: MqttBroker, tmp_path: Path) -> EdgeScene:
    config = make_edge_config(broker.url, tmp_path, broker.machine_id, **broker.agent_flags)
    return EdgeScene(broker, config)

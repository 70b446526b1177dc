"""The cloud's MQTT link on the repo's Mosquitto: a persistent session under a client id fixed
per replica (events wait for it while it is away), its presence on ``{prefix}/cloud``, and
the settings and pieces behind them (client id default, reconnect delays, ping waiters).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest
from flow_support import eventually
from support.mosquitto import CLOUD_PASSWORD, CLOUD_USER, Mosquitto, machine_password

from vendgate.cloud.machines import Pings
from vendgate.cloud.mqtt import MqttLink
from vendgate.cloud.settings import CloudSettings, MqttSettings
from vendgate.protocol import Money, SystemClock, reconnect_delay
from vendgate.protocol.mqtt import (
    CloudPresence,
    Ping,
    Pong,
    Started,
    StatusState,
    TopicTree,
    decode,
)

TREE = TopicTree()
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def settings_for(mosquitto: Mosquitto) -> MqttSettings:
    return MqttSettings(
        host="127.0.0.1",
        port=mosquitto.port,
        username=CLOUD_USER,
        password=CLOUD_PASSWORD,
        shared_subscriptions=True,
    )


class Received:
    def __init__(self) -> None:
        self.messages: list[aiomqtt.Message] = []

    async def __call__(self, message: aiomqtt.Message) -> None:
        self.messages.append(message)

    def topics(self) -> list[str]:
        return [str(m.topic) for m in self.messages]


@contextlib.asynccontextmanager
async def running(link: MqttLink, handler: Received) -> AsyncIterator[MqttLink]:
    task = asyncio.create_task(link.run(handler))
    try:
        await asyncio.wait_for(link.connected.wait(), 10)
        yield link
    finally:
        task.cancel()  # the replica stops: its session stays at the broker
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def machine_client(mosquitto: Mosquitto, machine_id: str) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        "127.0.0.1",
        mosquitto.port,
        username=machine_id,
        password=machine_password(machine_id),
        identifier=machine_id,
        socket_options=NODELAY,
    ) as client:
        yield client


def filters(settings: MqttSettings) -> list[object]:
    group = "cloud" if settings.shared_subscriptions else None
    return [TREE.events_filter(group), TREE.status_filter()]


@pytest.mark.parametrize(
    ("broker_restarts", "shared"),
    [(False, True), (True, False)],
    ids=["replica-away", "broker-restart"],
)
async def test_events_published_while_the_replica_is_away_wait_in_its_session(
    mosquitto: Mosquitto, broker_restarts: bool, shared: bool
) -> None:
    # Across a restart only plain subscriptions: mosquitto 2.0 does not bring a session's
    # `$share` subscriptions back from its persistence file (the presence hint covers that).
    settings = dataclasses.replace(settings_for(mosquitto), shared_subscriptions=shared)
    first, second = Received(), Received()
    async with running(MqttLink(settings, filters(settings)), first):  # type: ignore[arg-type]
        pass  # subscribed once: the broker now holds the replica's session
    if broker_restarts:  # the session is in mosquitto's persistence file, and comes back
        await asyncio.to_thread(mosquitto.stop)
        await asyncio.to_thread(mosquitto.start)
    event = Started.create(
        now=datetime.now(UTC), seq=1, vend_id="v1", funds=Money(3500, "NOK")
    ).encode()
    async with machine_client(mosquitto, "m1") as machine:
        await machine.publish(str(TREE.event("m1", "started")), event, qos=1)

    async with running(MqttLink(settings, filters(settings)), second):  # type: ignore[arg-type]

        async def delivered() -> bool:
            return str(TREE.event("m1", "started")) in second.topics()

        await eventually(delivered, what="the event queued while the replica was away")

    (message,) = [m for m in second.messages if str(m.topic).endswith("/evt/started")]
    assert message.payload == event


async def test_every_connect_announces_the_replica_on_the_cloud_topic(
    mosquitto: Mosquitto,
) -> None:
    settings = settings_for(mosquitto)
    link = MqttLink(settings, [], presence=TREE.cloud_presence())
    async with running(link, Received()), machine_client(mosquitto, "m2") as machine:
        # A machine may read it (the ACL), and gets the retained copy on subscribing.
        await machine.subscribe(str(TREE.cloud_presence()), qos=1)
        async with asyncio.timeout(10):
            raw = await anext(aiter(machine.messages))

    presence = decode("cloud", raw.payload)  # type: ignore[arg-type]
    assert isinstance(presence, CloudPresence)
    assert (presence.state, presence.replica) == (StatusState.ONLINE, CLOUD_USER)
    assert raw.retain


# -- settings and pure pieces --------------------------------------------------------------------


def test_the_client_id_is_fixed_per_replica() -> None:
    assert MqttSettings(username="cloud-a").client_id == "cloud-a"
    anonymous = MqttSettings()
    assert anonymous.client_id == MqttSettings().client_id
    assert anonymous.client_id.startswith("vendgate-cloud-")
    assert MqttSettings(username="cloud-a", client_id="x").client_id == "x"
    env = {"VENDGATE_MQTT_URL": "mqtt://cloud-b:pw@broker:1883"}
    assert CloudSettings.from_env(env).mqtt.client_id == "cloud-b"
    env["VENDGATE_MQTT_CLIENT_ID"] = "replica-7"
    assert CloudSettings.from_env(env).mqtt.client_id == "replica-7"


def test_the_ping_bound_comes_from_the_environment() -> None:
    assert CloudSettings.from_env({}).timing.ping_timeout == 1.5
    env = {"VENDGATE_PING_TIMEOUT_S": "0.5"}
    assert CloudSettings.from_env(env).timing.ping_timeout == 0.5


@pytest.mark.parametrize("attempt", range(12))
def test_reconnects_start_fast_and_stay_under_the_cap(attempt: int) -> None:
    ceiling = min(2.0, 0.1 * 2**attempt)
    for _ in range(20):
        assert ceiling / 2 <= reconnect_delay(attempt, base=0.1, cap=2.0) <= ceiling


class LoopbackLink:
    """Publishes pings into a function of the test: the machine's side, in memory."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.sent: list[Ping] = []

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        ping = decode("cmd/ping", payload)
        assert isinstance(ping, Ping)
        assert qos == 0
        self.sent.append(ping)
        self.answer(topic.split("/")[2], ping)  # type: ignore[operator]


def pong_for(ping: Ping, *, can_vend: bool = True) -> Pong:
    return Pong.create(
        now=datetime.now(UTC),
        ping_id=ping.id,
        boot_id="b",
        board="enabled",
        can_vend=can_vend,
        open_vends=[],
    )


async def test_a_pong_resolves_only_its_own_waiter() -> None:
    answered: list[bool] = []

    def machine(machine_id: str, ping: Ping) -> None:
        answered.append(pings.answered("m9", pong_for(ping)))  # another machine's topic
        answered.append(pings.answered(machine_id, pong_for(ping)))
        answered.append(pings.answered(machine_id, pong_for(ping)))  # a duplicate

    link = LoopbackLink(machine)
    pings = Pings(TREE, SystemClock(), link)
    pong = await pings.ask("m1", within_s=5)

    assert pong is not None
    assert pong.ping_id == link.sent[0].id
    assert link.sent[0].expires_at - link.sent[0].ts >= timedelta(seconds=5)
    assert answered == [False, True, False]
    assert pings.waiting == 0


async def test_silence_or_no_link_is_no_answer() -> None:
    assert await Pings(TREE, SystemClock(), None).ask("m1", within_s=5) is None  # no link at all
    pings = Pings(TREE, SystemClock(), LoopbackLink(lambda machine_id, ping: None))
    assert await pings.ask("m1", within_s=0.05) is None
    assert pings.waiting == 0
    assert not pings.answered(
        "m1", pong_for(Ping.create(now=datetime.now(UTC), expires_at=datetime.now(UTC)))
    )

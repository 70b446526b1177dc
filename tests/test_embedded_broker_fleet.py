"""A fleet connecting at once on the embedded broker (amqtt): every machine gets online.

amqtt 0.12 walks its live subscriptions while it awaits: on a connect (a returning session's
retained messages) and on every broadcast (the topic check of the broker with logins). A client
subscribing to a filter nobody had yet, meanwhile, raised ``RuntimeError: dictionary changed size
during iteration``: the returning machine had its CONNACK but no working session (no SUBACK,
nothing routed) and dropped; a broadcast stopped half-way (docs/broker.md, "amqtt under a connect
storm"). Both brokers the repo runs are tried: anonymous (``vendgate broker`` without a database,
the benchmark's) and with logins and per-machine topics (the cloud's own process, the demo).

Each machine does what an edge does on every connect: it subscribes to its commands and the
cloud's presence (retained), publishes its retained status ``online``, and is online once the
cloud's ``cmd/ping`` answering that status reaches it. Every wait is for such a message.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import pytest
from support.mosquitto import CLOUD_PASSWORD, CLOUD_USER, machine_password

from vendgate.broker import EmbeddedBroker
from vendgate.protocol.mqtt import TopicTree

FLEET = 200
FACT_LIMIT = 30.0  # a bound on each wait for a message, not a measurement
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
TREE = TopicTree()

pytestmark = pytest.mark.amqtt


async def machine_login_holds(username: str, password: str) -> bool:
    return password == machine_password(username)


@pytest.fixture(params=["anonymous", "logins"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[EmbeddedBroker]:
    if request.param == "anonymous":
        embedded = EmbeddedBroker()
    else:
        embedded = EmbeddedBroker(
            authenticate=machine_login_holds, cloud_logins={CLOUD_USER: CLOUD_PASSWORD}
        )
    async with embedded:
        yield embedded


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reached the event loop's exception handler: the broker lets nothing escape there
    (a connection handler's or a broadcast's error lands here, not in any test's await)."""
    loop = asyncio.get_running_loop()
    caught: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: caught.append(context))
    yield caught
    loop.set_exception_handler(previous)


def escaped(caught: list[dict[str, Any]]) -> Counter[str]:
    """What reached the loop's exception handler, and how often."""
    gc.collect()  # a task's error that nobody read is reported when the task is collected
    return Counter(f"{c.get('message')}: {c.get('exception')!r}" for c in caught)


def login(broker: EmbeddedBroker, username: str, **kwargs: Any) -> aiomqtt.Client:
    password = None
    if broker.guarded:
        password = CLOUD_PASSWORD if username == CLOUD_USER else machine_password(username)
    return aiomqtt.Client(
        broker.host,
        broker.port or 0,
        identifier=username,
        username=username,
        password=password,
        socket_options=NODELAY,
        timeout=FACT_LIMIT,
        **kwargs,
    )


@asynccontextmanager
async def cloud(broker: EmbeddedBroker) -> AsyncIterator[None]:
    """The cloud: its retained presence, and a ``cmd/ping`` for every ``online`` status (the
    payload names the machine's connect, so that each connect waits for its own answer)."""
    async with login(broker, CLOUD_USER) as client:
        await client.subscribe(str(TREE.status_filter()), qos=1)
        await client.publish(str(TREE.cloud_presence()), b"online", qos=1, retain=True)

        async def answer() -> None:
            async for message in client.messages:
                state, _, connect = bytes(message.payload).partition(b" ")  # type: ignore[arg-type]
                if state == b"online":
                    machine_id = TREE.parse(message.topic.value).machine_id
                    await client.publish(str(TREE.command(machine_id, "ping")), connect, qos=1)

        answering = asyncio.create_task(answer())
        try:
            yield
        finally:
            answering.cancel()
            await asyncio.gather(answering, return_exceptions=True)


async def connect_once(broker: EmbeddedBroker, machine_id: str, connect: int) -> None:
    """One connect of a machine with its persistent session; returns once it is online."""
    status = str(TREE.status(machine_id))
    will = aiomqtt.Will(status, b"offline", 1, True)
    ping = str(TREE.command(machine_id, "ping"))
    async with login(broker, machine_id, clean_session=False, will=will) as client:
        for topic_filter in TREE.edge_filters(machine_id):
            await client.subscribe(str(topic_filter), qos=1)
        await client.publish(status, f"online {connect}".encode(), qos=1, retain=True)
        async with asyncio.timeout(FACT_LIMIT):
            async for message in client.messages:
                if message.topic.value == ping and message.payload == str(connect).encode():
                    return


async def machine(
    broker: EmbeddedBroker,
    machine_id: str,
    *,
    connects: int = 1,
    after: asyncio.Event | None = None,
    dropped: asyncio.Event | None = None,
) -> None:
    """A machine that connects ``connects`` times, each time at once after the last one was
    online (a returning machine); it starts after ``after`` and sets ``dropped`` when it has
    been online and dropped its first connection."""
    if after is not None:
        await after.wait()
    for connect in range(connects):
        await connect_once(broker, machine_id, connect)
        if dropped is not None:
            dropped.set()


def offline(machine_ids: list[str], results: list[BaseException | None]) -> dict[str, str]:
    return {m: repr(r) for m, r in zip(machine_ids, results, strict=True) if r is not None}


async def test_a_fleet_connecting_at_once_gets_online(
    broker: EmbeddedBroker, loop_errors: list[dict[str, Any]]
) -> None:
    fleet = [f"m{n}" for n in range(FLEET)]
    async with cloud(broker):
        results = await asyncio.gather(*(machine(broker, m) for m in fleet), return_exceptions=True)
    assert (escaped(loop_errors), offline(fleet, results)) == ({}, {})


async def test_machines_reconnecting_while_others_join_all_get_online(
    broker: EmbeddedBroker, loop_errors: list[dict[str, Any]]
) -> None:
    # Half of the fleet comes back at once after being online (its sessions, subscriptions and
    # the retained presence are there); each time one drops, a new machine joins and
    # subscribes to filters nobody had: amqtt used to walk its subscriptions through that.
    pairs = FLEET // 2
    returning = [f"back{n}" for n in range(pairs)]
    joining = [f"new{n}" for n in range(pairs)]
    drops = [asyncio.Event() for _ in range(pairs)]
    work = [
        machine(broker, m, connects=2, dropped=d) for m, d in zip(returning, drops, strict=True)
    ]
    work += [machine(broker, m, after=d) for m, d in zip(joining, drops, strict=True)]
    async with cloud(broker):
        results = await asyncio.gather(*work, return_exceptions=True)
    assert (escaped(loop_errors), offline(returning + joining, results)) == ({}, {})

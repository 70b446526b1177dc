"""The test tiers themselves, and the repo's mosquitto.conf and ACL doing what a fleet needs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import aiomqtt
import pytest
from support.mosquitto import CLOUD_PASSWORD, CLOUD_USER, CLOUD_USER_2, Mosquitto, machine_password

from vendgate.broker import EmbeddedBroker

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
LIMIT_S = 20.0  # only for a broken broker: the tests wait for messages, not for time


def client(port: int, user: str | None = None, **kwargs: object) -> aiomqtt.Client:
    password = None
    if user == CLOUD_USER:
        password = CLOUD_PASSWORD
    elif user is not None:
        password = machine_password(user)
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username=user,
        password=password,
        identifier=user,
        socket_options=NODELAY,
        **kwargs,  # type: ignore[arg-type]
    )


Received = list[tuple[str, bytes]]


async def receive_until(
    subscriber: aiomqtt.Client, done: Callable[[Received], bool], got: Received | None = None
) -> Received:
    """What arrives, until ``done(got)`` holds: a fact to wait for, not a span of time.

    ``got`` may be shared by several subscribers (each then stops once ``done`` holds for all).
    """
    got = [] if got is None else got
    if done(got):
        return got
    async with asyncio.timeout(LIMIT_S):
        async for message in subscriber.messages:
            got.append((str(message.topic), bytes(message.payload)))  # type: ignore[arg-type]
            if done(got):
                break
    return got


def seen(topic: str, payload: bytes) -> Callable[[Received], bool]:
    return lambda got: (topic, payload) in got


async def test_amqtt_broker_round_trip(amqtt_broker: EmbeddedBroker) -> None:
    assert amqtt_broker.url.startswith("mqtt://127.0.0.1:")
    async with (
        client(amqtt_broker.port or 0) as sub,
        client(amqtt_broker.port or 0) as pub,
    ):
        await sub.subscribe("vend/v1/+/evt/#", qos=1)
        await pub.publish("vend/v1/m1/evt/hello", b"{}", qos=1)
        assert await receive_until(sub, len) == [("vend/v1/m1/evt/hello", b"{}")]


async def test_mosquitto_refuses_anonymous_clients(mosquitto: Mosquitto) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with client(mosquitto.port):
            pass


async def test_mosquitto_refuses_a_wrong_password(mosquitto: Mosquitto) -> None:
    bad = aiomqtt.Client("127.0.0.1", mosquitto.port, username="m1", password="nope")
    with pytest.raises(aiomqtt.MqttError):
        async with bad:
            pass


async def test_mosquitto_acl_confines_a_machine_to_its_own_topics(mosquitto: Mosquitto) -> None:
    async with client(mosquitto.port, CLOUD_USER) as cloud, client(mosquitto.port, "m1") as m1:
        await cloud.subscribe("vend/v1/#", qos=1)
        await m1.subscribe("vend/v1/m2/cmd/#", qos=1)  # another machine's commands
        await m1.subscribe("vend/v1/m1/cmd/#", qos=1)
        await m1.publish("vend/v1/m1/evt/started", b"own", qos=1)
        await m1.publish("vend/v1/m2/evt/started", b"forged", qos=1)
        await m1.publish("vend/v1/m1/cmd/authorized", b"self-command", qos=1)
        await cloud.publish("vend/v1/m2/cmd/authorized", b"for-m2", qos=1)
        await cloud.publish("vend/v1/m1/cmd/authorized", b"for-m1", qos=1)
        # m1's publishes were acknowledged (so routed) before the cloud's: whatever of them a
        # subscriber gets comes before the cloud's last message, ``for-m1``.
        last = ("vend/v1/m1/cmd/authorized", b"for-m1")
        seen_by_cloud = await receive_until(cloud, seen(*last))
        seen_by_m1 = await receive_until(m1, seen(*last))
    assert ("vend/v1/m1/evt/started", b"own") in seen_by_cloud
    assert all(payload not in (b"forged", b"self-command") for _, payload in seen_by_cloud)
    assert seen_by_m1 == [("vend/v1/m1/cmd/authorized", b"for-m1")]


async def test_mosquitto_shares_events_between_cloud_replicas(mosquitto: Mosquitto) -> None:
    # one user per replica: Mosquitto makes the username the client id
    replicas = [
        aiomqtt.Client(
            "127.0.0.1",
            mosquitto.port,
            username=user,
            password=CLOUD_PASSWORD,
            identifier=user,
            socket_options=NODELAY,
        )
        for user in (CLOUD_USER, CLOUD_USER_2)
    ]
    async with replicas[0] as first, replicas[1] as second, client(mosquitto.port, "m3") as m3:
        for replica in (first, second):
            await replica.subscribe("$share/cloud/vend/v1/+/evt/#", qos=1)
        for n in range(20):
            await m3.publish("vend/v1/m3/evt/dispensed", str(n).encode(), qos=1)
        got_first: Received = []
        got_second: Received = []
        collectors = [
            asyncio.create_task(receive_until(replica, lambda _: False, got))
            for replica, got in ((first, got_first), (second, got_second))
        ]
        try:
            async with asyncio.timeout(LIMIT_S):
                while len(got_first) + len(got_second) < 20:  # noqa: ASYNC110  # two tasks fill
                    await asyncio.sleep(0.02)
        finally:
            for collector in collectors:
                collector.cancel()
            await asyncio.gather(*collectors, return_exceptions=True)
    payloads = sorted(int(p) for _, p in got_first + got_second)
    assert payloads == list(range(20)), "each event reaches exactly one replica"
    assert got_first, "both replicas take a share"
    assert got_second, "both replicas take a share"


async def test_mosquitto_publishes_the_last_will_of_a_vanished_machine(
    mosquitto: Mosquitto,
) -> None:
    will = aiomqtt.Will("vend/v1/m4/status", b"offline", qos=1, retain=True)
    async with client(mosquitto.port, CLOUD_USER) as cloud:
        await cloud.subscribe("vend/v1/+/status", qos=1)
        machine = client(mosquitto.port, "m4", will=will, keepalive=1)
        await machine.__aenter__()
        await machine.publish("vend/v1/m4/status", b"online", qos=1, retain=True)
        machine._client._sock_close()  # type: ignore[attr-defined]  # vanish without DISCONNECT
        got = await receive_until(cloud, seen("vend/v1/m4/status", b"offline"))
    assert ("vend/v1/m4/status", b"online") in got
    assert got[-1] == ("vend/v1/m4/status", b"offline")


def test_mosquitto_config_keeps_production_settings(mosquitto: Mosquitto) -> None:
    config = (mosquitto.folder / "mosquitto.conf").read_text()
    for line in ("allow_anonymous false", "set_tcp_nodelay true", "persistence true"):
        assert line in config.splitlines()


async def test_postgres_database_is_fresh_and_writable(postgres_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(postgres_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE probe (id int primary key)"))
            await connection.execute(text("INSERT INTO probe VALUES (1), (2)"))
            count = await connection.scalar(text("SELECT count(*) FROM probe"))
            await connection.execute(text("DROP TABLE probe"))
    finally:
        await engine.dispose()
    assert count == 2

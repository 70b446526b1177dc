"""Who may do what on the broker: client ids tied to usernames, logins, each machine's topics.

One machine must not be able to throw another off the broker (issue 9, finding 5).

MQTT lets a new connection with an existing client id take that session over: the old
connection is dropped and, with a clean session, its queued QoS 1 commands are gone. A machine
logs in with its own password, so the brokers tie the client id to the username: Mosquitto with
``use_username_as_clientid true`` (the impostor simply becomes itself), the embedded amqtt
broker by refusing a client id that differs from the username before it touches any session.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest
from support.mosquitto import (
    CLOUD_PASSWORD,
    CLOUD_USER,
    CLOUD_USER_2,
    STATIC,
    Mosquitto,
    machine_password,
    running,
)

from vendgate.broker import EmbeddedBroker, claims_another_identity

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
COMMANDS = "vend/v1/m2/cmd/#"
COMMAND = "vend/v1/m2/cmd/authorized"
PRESENCE = "vend/v1/cloud"


def login(port: int, username: str | None, identifier: str, **kwargs: object) -> aiomqtt.Client:
    """A client as ``username`` (its real password on Mosquitto) claiming ``identifier``."""
    password = None
    if username == CLOUD_USER:
        password = CLOUD_PASSWORD
    elif username is not None:
        password = machine_password(username)
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username=username,
        password=password,
        identifier=identifier,
        socket_options=NODELAY,
        **kwargs,  # type: ignore[arg-type]
    )


async def next_message(client: aiomqtt.Client, limit: float = 10.0) -> tuple[str, bytes]:
    """The next message ``client`` receives; fails after ``limit`` seconds without one."""
    async with asyncio.timeout(limit):
        message = await anext(aiter(client.messages))
    return str(message.topic), bytes(message.payload)  # type: ignore[arg-type]


@asynccontextmanager
async def m2_session(port: int, username: str | None) -> AsyncIterator[aiomqtt.Client]:
    """m2 online with its persistent session, subscribed to its commands."""
    async with login(port, username, "m2", clean_session=False) as m2:
        await m2.subscribe(COMMANDS, qos=1)
        yield m2


async def test_mosquitto_a_machine_cannot_take_over_another_machines_session(
    mosquitto: Mosquitto,
) -> None:
    port = mosquitto.port
    async with m2_session(port, "m2"):
        pass  # m2 goes offline; the broker keeps its session
    async with login(port, CLOUD_USER, CLOUD_USER) as cloud:
        await cloud.publish(COMMAND, b"queued while offline", qos=1)
        # m1, with its own password, claims m2's client id with a clean session: on a broker that
        # honours the claim, m2's session and its queued command are wiped.
        async with login(port, "m1", "m2", clean_session=True):
            pass
        async with m2_session(port, "m2") as m2:
            assert await next_message(m2) == (COMMAND, b"queued while offline")
            async with login(port, "m1", "m2", clean_session=False):
                # the impostor is connected now; m2 must still be too
                await cloud.publish(COMMAND, b"sent while the impostor is online", qos=1)
                assert await next_message(m2) == (COMMAND, b"sent while the impostor is online")


def test_mosquitto_config_ties_the_client_id_to_the_username(mosquitto: Mosquitto) -> None:
    config = (mosquitto.folder / "mosquitto.conf").read_text()
    assert "use_username_as_clientid true" in config.splitlines()


async def test_mosquitto_two_cloud_replicas_with_their_own_users_stay_connected(
    mosquitto: Mosquitto,
) -> None:
    # Client id = username on Mosquitto, so each replica needs a user of its own (mosquitto.acl).
    replica_2 = aiomqtt.Client(
        "127.0.0.1",
        mosquitto.port,
        username=CLOUD_USER_2,
        password=CLOUD_PASSWORD,
        socket_options=NODELAY,
    )
    async with login(mosquitto.port, CLOUD_USER, CLOUD_USER) as first, replica_2 as second:
        for replica in (first, second):
            await replica.subscribe(COMMANDS, qos=1)
        await first.publish(COMMAND, b"to both", qos=1)
        assert await next_message(first) == (COMMAND, b"to both")
        assert await next_message(second) == (COMMAND, b"to both")


async def test_embedded_broker_refuses_a_client_id_that_is_not_the_username(
    amqtt_broker: EmbeddedBroker,
) -> None:
    # The embedded broker is anonymous and keeps nothing for offline clients, so the harm to
    # show is the one to a machine that is online: being dropped.
    port = amqtt_broker.port or 0
    async with m2_session(port, "m2") as m2, login(port, None, "cloud") as cloud:
        for clean_session in (True, False):
            with pytest.raises(aiomqtt.MqttCodeError, match=r"(?i)identifier"):
                async with login(port, "m1", "m2", clean_session=clean_session):
                    pass
            command = f"after an impostor with clean_session={clean_session}".encode()
            await cloud.publish(COMMAND, command, qos=1)
            assert await next_message(m2) == (COMMAND, command)


async def test_embedded_broker_still_takes_anonymous_and_matching_clients(
    amqtt_broker: EmbeddedBroker,
) -> None:
    port = amqtt_broker.port or 0
    async with login(port, "m2", "m2") as m2, login(port, None, "any-id") as anonymous:
        await m2.subscribe(COMMANDS, qos=1)
        await anonymous.publish(COMMAND, b"hello", qos=1)
        assert await next_message(m2) == (COMMAND, b"hello")


async def test_embedded_broker_sends_a_client_only_the_retained_messages_it_subscribed_to(
    amqtt_broker: EmbeddedBroker,
) -> None:
    # amqtt 0.12 itself sends a connecting client the retained messages matching any client's
    # subscriptions: here m1 would get m2's status (vendgate/_amqtt_identity.py).
    port = amqtt_broker.port or 0
    async with login(port, None, "cloud") as cloud:
        await cloud.subscribe("vend/v1/+/status", qos=1)
        await cloud.publish("vend/v1/m2/status", b"m2 online", qos=1, retain=True)
        await cloud.publish(PRESENCE, b"cloud online", qos=1, retain=True)
        assert await next_message(cloud) == ("vend/v1/m2/status", b"m2 online")
        async with login(port, "m1", "m1") as m1:
            await m1.subscribe("vend/v1/m1/cmd/#", qos=1)
            await cloud.publish("vend/v1/m1/cmd/authorized", b"for m1", qos=1)
            assert await next_message(m1) == ("vend/v1/m1/cmd/authorized", b"for m1")
            await m1.subscribe(PRESENCE, qos=1)  # a retained message it did subscribe to
            assert await next_message(m1) == (PRESENCE, b"cloud online")


async def test_mosquitto_every_machine_reads_the_cloud_presence_and_none_writes_it(
    mosquitto: Mosquitto,
) -> None:
    port = mosquitto.port
    async with login(port, CLOUD_USER, CLOUD_USER) as cloud:
        await cloud.publish(PRESENCE, b"cloud online", qos=1, retain=True)
    async with login(port, "m1", "m1") as m1:
        await m1.subscribe(PRESENCE, qos=1)
        assert await next_message(m1) == (PRESENCE, b"cloud online")
        await m1.publish(PRESENCE, b"forged by m1", qos=1, retain=True)  # acked, then dropped
    async with login(port, "m3", "m3") as m3:
        await m3.subscribe(PRESENCE, qos=1)
        assert await next_message(m3) == (PRESENCE, b"cloud online")


@pytest.mark.parametrize(
    ("username", "client_id", "random_id", "refused"),
    [
        ("m1", "m2", False, True),  # m1 claiming m2's session
        ("m1", "m1", False, False),
        (None, "m2", False, False),  # anonymous (the embedded broker's demo and test clients)
        ("m1", "generated", True, False),  # no client id sent: the broker's own names nobody
    ],
)
def test_which_connects_claim_another_identity(
    username: str | None, client_id: str, random_id: bool, refused: bool
) -> None:
    assert claims_another_identity(username, client_id, random_id) is refused


# -- logins and per-machine topics ---------------------------------------------------------------
# The embedded broker with an in-memory ``authenticate`` (the cloud passes one reading its
# database) refuses what Mosquitto's dynamic-security roles refuse; the static Mosquitto set-up
# (mosquitto-static.conf + mosquitto.acl) still confines machines too.


class Logins:
    """An in-memory store of machine logins, m1..m3; ``revoked`` ones are refused."""

    def __init__(self) -> None:
        self.passwords = {m: machine_password(m) for m in ("m1", "m2", "m3")}
        self.revoked: set[str] = set()
        self.failing = False

    async def authenticate(self, username: str, password: str) -> bool:
        if self.failing:
            raise ConnectionError("the login store is down")
        return username not in self.revoked and self.passwords.get(username) == password


@pytest.fixture
def logins() -> Logins:
    return Logins()


@pytest.fixture
async def guarded(logins: Logins) -> AsyncIterator[EmbeddedBroker]:
    cloud = {CLOUD_USER: CLOUD_PASSWORD}
    async with EmbeddedBroker(authenticate=logins.authenticate, cloud_logins=cloud) as broker:
        yield broker


def guarded_login(port: int, username: str | None, password: str | None) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1", port, username=username, password=password, socket_options=NODELAY
    )


async def refusal(port: int, username: str | None, password: str | None) -> str:
    """Why the broker refused the login (its CONNACK text), "" if it let it in."""
    try:
        async with guarded_login(port, username, password):
            return ""
    except aiomqtt.MqttCodeError as exc:
        return str(exc)


@pytest.mark.amqtt
@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        (None, None, "not authori[sz]ed"),  # anonymous
        ("m1", "wrong", "bad user name or password"),
        ("nobody", "anything", "bad user name or password"),
        (CLOUD_USER, machine_password("m1"), "bad user name or password"),
    ],
)
async def test_embedded_broker_with_logins_refuses_bad_ones(
    guarded: EmbeddedBroker, username: str | None, password: str | None, reason: str
) -> None:
    port = guarded.port or 0
    found = await refusal(port, username, password)
    assert re.search(reason, found, flags=re.IGNORECASE), found
    assert await refusal(port, "m1", machine_password("m1")) == ""


@pytest.mark.amqtt
async def test_embedded_broker_never_asks_the_machine_store_about_a_cloud_user(
    guarded: EmbeddedBroker, logins: Logins
) -> None:
    # A machine given the cloud user's name (an operator's typo) must not get the cloud's rights.
    logins.passwords[CLOUD_USER] = "the machine's password"
    found = await refusal(guarded.port or 0, CLOUD_USER, "the machine's password")
    assert "bad user name or password" in found.lower(), found
    assert await refusal(guarded.port or 0, CLOUD_USER, CLOUD_PASSWORD) == ""


@pytest.mark.amqtt
async def test_embedded_broker_lets_the_cloud_in_before_it_can_check_machines() -> None:
    # The cloud's Fleet (the machines' check) exists only once the cloud runs on the broker.
    async with EmbeddedBroker(cloud_logins={CLOUD_USER: CLOUD_PASSWORD}) as broker:
        port = broker.port or 0
        assert await refusal(port, CLOUD_USER, CLOUD_PASSWORD) == ""
        found = await refusal(port, "m1", machine_password("m1"))
        assert "unavailable" in found.lower(), found
        assert "not authori" in (await refusal(port, None, None)).lower()
        broker.authenticate = Logins().authenticate
        assert await refusal(port, "m1", machine_password("m1")) == ""


@pytest.mark.amqtt
async def test_embedded_broker_refuses_all_while_the_login_store_is_down(
    guarded: EmbeddedBroker, logins: Logins
) -> None:
    logins.failing = True
    found = await refusal(guarded.port or 0, "m1", machine_password("m1"))
    assert "unavailable" in found.lower(), found


@pytest.mark.amqtt
async def test_embedded_broker_confines_a_machine_to_its_own_topics(
    guarded: EmbeddedBroker,
) -> None:
    port = guarded.port or 0
    async with (
        guarded_login(port, CLOUD_USER, CLOUD_PASSWORD) as cloud,
        guarded_login(port, "m1", machine_password("m1")) as m1,
    ):
        await cloud.subscribe("vend/v1/#", qos=1)
        for stranger in ("vend/v1/m2/cmd/#", "vend/v1/+/cmd/#", "#"):
            codes = await m1.subscribe(stranger, qos=1)
            assert all(getattr(code, "is_failure", False) for code in codes), stranger
        await m1.subscribe("vend/v1/m1/cmd/#", qos=1)
        for forged in ("vend/v1/m2/evt/dispensed", "vend/v1/m2/status", "vend/v1/m1/cmd/x"):
            await m1.publish(forged, b"forged by m1", qos=1)
        await m1.publish("vend/v1/m1/status", b"m1 online", qos=1)
        assert await next_message(cloud) == ("vend/v1/m1/status", b"m1 online")
        await cloud.publish("vend/v1/m2/cmd/authorized", b"for m2", qos=1)
        await cloud.publish(COMMAND.replace("m2", "m1"), b"for m1", qos=1)
        assert await next_message(m1) == ("vend/v1/m1/cmd/authorized", b"for m1")


@pytest.mark.amqtt
async def test_embedded_broker_drops_a_revoked_machine_at_once(
    guarded: EmbeddedBroker, logins: Logins
) -> None:
    port = guarded.port or 0
    will = aiomqtt.Will("vend/v1/m1/status", b"m1 offline", qos=1)
    m1 = aiomqtt.Client(
        "127.0.0.1", port, username="m1", password=machine_password("m1"), will=will
    )
    async with (
        guarded_login(port, CLOUD_USER, CLOUD_PASSWORD) as cloud,
        m1,
        guarded_login(port, "m2", machine_password("m2")) as m2,
    ):
        await cloud.subscribe("vend/v1/+/status", qos=1)
        await m1.subscribe("vend/v1/m1/cmd/#", qos=1)
        logins.revoked.add("m1")
        assert await guarded.disconnect("m1") == 1
        with pytest.raises(aiomqtt.MqttError, match="Disconnected"):
            await next_message(m1)
        assert await refusal(port, "m1", machine_password("m1")) != ""
        # no will (as on Mosquitto), and the others stay connected
        await m2.publish("vend/v1/m2/status", b"m2 online", qos=1)
        assert await next_message(cloud) == ("vend/v1/m2/status", b"m2 online")
        await m2.subscribe(COMMANDS, qos=1)
        await cloud.publish(COMMAND, b"still here", qos=1)
        assert await next_message(m2) == (COMMAND, b"still here")
    assert await guarded.disconnect("m1") == 0


@pytest.mark.amqtt
async def test_embedded_broker_a_wrong_password_for_m2_does_not_throw_m2_off(
    guarded: EmbeddedBroker,
) -> None:
    # Checked before amqtt looks for m2's session: refused by amqtt's own auth plugin instead,
    # the impostor would already have replaced m2's connection.
    port = guarded.port or 0
    async with (
        guarded_login(port, "m2", machine_password("m2")) as m2,
        guarded_login(port, CLOUD_USER, CLOUD_PASSWORD) as cloud,
    ):
        await m2.subscribe(COMMANDS, qos=1)
        impostor = aiomqtt.Client(
            "127.0.0.1", port, username="m2", password="guess", identifier="m2", clean_session=True
        )
        with pytest.raises(aiomqtt.MqttCodeError):
            async with impostor:
                pass
        await cloud.publish(COMMAND, b"after the impostor", qos=1)
        assert await next_message(m2) == (COMMAND, b"after the impostor")


@pytest.fixture
def static_mosquitto() -> Iterator[Mosquitto]:
    with running(STATIC) as broker:
        yield broker


@pytest.mark.mosquitto
async def test_the_static_mosquitto_setup_still_confines_machines(
    static_mosquitto: Mosquitto,
) -> None:
    port = static_mosquitto.port
    assert await refusal(port, None, None) != ""
    assert await refusal(port, "m1", "wrong") != ""
    async with login(port, CLOUD_USER, CLOUD_USER) as cloud, login(port, "m1", "m1") as m1:
        await cloud.subscribe("vend/v1/+/evt/+", qos=1)
        await m1.subscribe("vend/v1/m2/cmd/#", qos=1)  # granted, yet nothing is delivered
        await m1.subscribe("vend/v1/m1/cmd/#", qos=1)
        await cloud.publish(COMMAND, b"for m2", qos=1)
        await cloud.publish("vend/v1/m1/cmd/authorized", b"for m1", qos=1)
        assert await next_message(m1) == ("vend/v1/m1/cmd/authorized", b"for m1")
        await m1.publish("vend/v1/m2/evt/dispensed", b"forged by m1", qos=1)
        await m1.publish("vend/v1/m1/evt/dispensed", b"from m1", qos=1)
        assert await next_message(cloud) == ("vend/v1/m1/evt/dispensed", b"from m1")


# -- `vendgate broker`: anonymous, or checking the cloud's database ------------------------------

VENDGATE = [sys.executable, "-m", "vendgate"]
CLOUD_SECRET = "the-cloud-password"


def command_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("VENDGATE_")}
    return {
        **env,
        "VENDGATE_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
        **variables,
    }


async def add_machine(env: dict[str, str], machine_id: str) -> str:
    """``vendgate cloud add-machine`` (the Fleet): the broker password it shows once."""
    process = await asyncio.create_subprocess_exec(
        *VENDGATE, "cloud", "add-machine", machine_id, "Lobby", env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    found = re.search(r"password (\S+)", out.decode())
    assert found is not None, out.decode()
    return found.group(1)


@asynccontextmanager
async def broker_command(env: dict[str, str], *args: str) -> AsyncIterator[tuple[int, str]]:
    """``vendgate broker --port 0 ARGS`` running: its port and its first line on stderr."""
    process = await asyncio.create_subprocess_exec(
        *VENDGATE, "broker", "--port", "0", *args, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        url = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
        assert url.startswith("mqtt://127.0.0.1:"), url
        said = ""
        while not said.startswith("vendgate broker:"):  # after the log lines
            said = (await asyncio.wait_for(process.stderr.readline(), 30)).decode().strip()
        draining = asyncio.create_task(process.stderr.read())  # a full pipe would stop it
        yield int(url.rsplit(":", 1)[1]), said
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        await draining
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.amqtt
async def test_the_broker_command_without_a_database_warns_that_it_takes_anyone(
    tmp_path: Path,
) -> None:
    async with broker_command(command_env(tmp_path)) as (port, said):
        assert "WARNING: anonymous" in said
        assert await refusal(port, None, None) == ""


@pytest.mark.amqtt
async def test_the_broker_command_checks_machines_against_the_clouds_database(
    tmp_path: Path,
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}"
    env = command_env(tmp_path, VENDGATE_DATABASE_URL=database)
    password = await add_machine(env, "m1")
    # The cloud's login from the variable the cloud itself logs in with.
    env["VENDGATE_MQTT_URL"] = f"mqtt://{CLOUD_USER}:{CLOUD_SECRET}@127.0.0.1:1883"
    async with broker_command(env, "--recheck", "0.1") as (port, said):
        assert f"the cloud as {CLOUD_USER}, machines against sqlite" in said
        assert "not authori" in (await refusal(port, None, None)).lower()
        assert "bad user name" in (await refusal(port, "m1", "wrong")).lower()
        assert "bad user name" in (await refusal(port, CLOUD_USER, password)).lower()
        async with (
            guarded_login(port, CLOUD_USER, CLOUD_SECRET) as cloud,
            guarded_login(port, "m1", password) as m1,
        ):
            await cloud.subscribe("vend/v1/#", qos=1)
            await m1.publish("vend/v1/m2/status", b"forged by m1", qos=1)
            await m1.publish("vend/v1/m1/status", b"m1 online", qos=1)
            assert await next_message(cloud) == ("vend/v1/m1/status", b"m1 online")
            # A cloud in another process revokes m1: nobody tells this broker, it rechecks.
            await revoke(database, "m1")
            with pytest.raises(aiomqtt.MqttError, match="Disconnected"):
                await next_message(m1)
            await cloud.publish("vend/v1/m2/cmd/authorized", b"still connected", qos=1)
            assert await next_message(cloud) == ("vend/v1/m2/cmd/authorized", b"still connected")
        assert "bad user name" in (await refusal(port, "m1", password)).lower()


async def revoke(database: str, machine_id: str) -> None:
    """What ``DELETE /api/v1/machines/{id}/credentials`` does, on the cloud's database."""
    from vendgate.cloud.broker import DatabaseLogins
    from vendgate.cloud.db import create_engine, session_factory
    from vendgate.cloud.machines import Fleet, FleetPolicy
    from vendgate.protocol import SystemClock
    from vendgate.protocol.mqtt import TopicTree

    engine = create_engine(database)
    try:
        policy = FleetPolicy(public_url="http://cloud.test", machine_mqtt_url="")
        sessions = session_factory(engine)
        fleet = Fleet(sessions, SystemClock(), TopicTree(), DatabaseLogins(), policy)
        await fleet.revoke(machine_id)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("args", "variables", "wanted"),
    [
        (["--database", "{db}"], {}, "vendgate cloud migrate"),  # an empty database
        (["--cloud-user", "x"], {}, "need --database"),
        (
            ["--database", "{db}"],
            {"VENDGATE_MQTT_URL": "mqtt://127.0.0.1"},
            "--cloud-password-file",
        ),
    ],
)
def test_the_broker_command_refuses_what_it_cannot_use_in_one_line(
    tmp_path: Path, args: list[str], variables: dict[str, str], wanted: str
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    env = command_env(tmp_path, **{"VENDGATE_MQTT_URL": f"mqtt://u:{CLOUD_SECRET}@h", **variables})
    argv = [arg.replace("{db}", database) for arg in args]
    done = subprocess.run(
        [*VENDGATE, "broker", "--port", "0", *argv],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0
    assert len(lines) == 1, done.stderr
    assert wanted in lines[0]
    assert done.stdout == ""  # it never listened

"""Machines' broker logins on real Mosquitto with the dynamic-security plugin (issue "operators").

The ``mosquitto`` fixture runs the repo's mosquitto.conf: ``init-dynsec``'s file with the cloud's
login, then every other login added through ``DynsecAccounts`` (tests/support/mosquitto.py).
Here the admin client (``ADMIN_USER``, the cloud's role) adds, rotates, disables and removes
machines while the cloud's own login stays connected, and each refusal is shown by a later,
allowed message arriving first, never by waiting for nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from support.mosquitto import (
    CLOUD_PASSWORD,
    CLOUD_USER,
    CLOUD_USER_2,
    DYNSEC_FILE,
    Mosquitto,
    give_to_mosquitto,
    machine_password,
)
from support.tiers import unavailable

from vendgate.cli import main
from vendgate.cloud.broker import (
    BrokerAccountError,
    UnknownMachine,
    hashed_password,
    initial_config,
)
from vendgate.protocol.mqtt import MachineIdError

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
FRESH = "m42"  # not one of the fixture's machines


def client(port: int, username: str | None, password: str | None = None) -> aiomqtt.Client:
    """``username`` with ``password`` (default: its real one)."""
    if password is None and username is not None:
        password = (
            CLOUD_PASSWORD if username.startswith("vendgate-") else machine_password(username)
        )
    return aiomqtt.Client(
        "127.0.0.1", port, username=username, password=password, socket_options=NODELAY
    )


async def next_message(mqtt: aiomqtt.Client, limit: float = 10.0) -> tuple[str, bytes]:
    async with asyncio.timeout(limit):
        message = await anext(aiter(mqtt.messages))
    return str(message.topic), bytes(message.payload)  # type: ignore[arg-type]


async def refused(port: int, username: str | None, password: str | None) -> bool:
    try:
        async with client(port, username, password):
            return False
    except aiomqtt.MqttCodeError:
        return True


async def reaches(port: int, machine: str, password: str | None = None) -> bool:
    """``machine`` logs in and a command from the cloud reaches it."""
    topic = f"vend/v1/{machine}/cmd/ping"
    async with client(port, machine, password) as mqtt, client(port, CLOUD_USER) as cloud:
        await mqtt.subscribe(f"vend/v1/{machine}/cmd/+", qos=1)
        await cloud.publish(topic, b"ping", qos=1)
        return await next_message(mqtt) == (topic, b"ping")


def is_refusal(codes: object) -> bool:
    return all(getattr(code, "is_failure", False) for code in codes)  # type: ignore[attr-defined]


async def test_a_machine_added_through_dynsec_logs_in_and_talks_to_the_cloud(
    mosquitto: Mosquitto,
) -> None:
    port = mosquitto.port
    assert await refused(port, FRESH, "fresh-secret")
    async with mosquitto.accounts() as accounts:
        await accounts.add(FRESH, "fresh-secret")
    assert await reaches(port, FRESH, "fresh-secret")
    async with client(port, CLOUD_USER) as cloud, client(port, FRESH, "fresh-secret") as machine:
        await cloud.subscribe("$share/cloud/vend/v1/+/evt/+", qos=1)
        await machine.publish(f"vend/v1/{FRESH}/evt/hello", b"hi", qos=1)
        assert await next_message(cloud) == (f"vend/v1/{FRESH}/evt/hello", b"hi")


@pytest.mark.parametrize(
    ("username", "password"),
    [
        (None, None),  # anonymous
        ("m1", "wrong"),
        ("nobody", "anything"),
        (CLOUD_USER, "wrong"),
    ],
)
async def test_logins_without_the_right_password_are_refused(
    mosquitto: Mosquitto, username: str | None, password: str | None
) -> None:
    assert await refused(mosquitto.port, username, password)


async def test_a_machine_cannot_read_another_machines_commands(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    async with client(port, "m1") as m1, client(port, CLOUD_USER) as cloud:
        for stranger in ("vend/v1/m2/cmd/#", "vend/v1/+/cmd/#", "vend/v1/#", "#"):
            assert is_refusal(await m1.subscribe(stranger, qos=1)), stranger
        assert not is_refusal(await m1.subscribe("vend/v1/m1/cmd/#", qos=1))
        await cloud.publish("vend/v1/m2/cmd/authorized", b"for m2", qos=1)
        await cloud.publish("vend/v1/m1/cmd/authorized", b"for m1", qos=1)
        assert await next_message(m1) == ("vend/v1/m1/cmd/authorized", b"for m1")


async def test_a_machine_cannot_write_another_machines_topics(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    async with client(port, CLOUD_USER) as cloud, client(port, "m1") as m1:
        await cloud.subscribe("vend/v1/#", qos=1)
        for forged in (
            "vend/v1/m2/evt/dispensed",
            "vend/v1/m2/status",
            "vend/v1/m2/telemetry",
            "vend/v1/m2/cmd/authorized",
            "vend/v1/m1/cmd/authorized",  # its own commands come from the cloud only
        ):
            await m1.publish(forged, b"forged by m1", qos=1)  # acked, then dropped
        await m1.publish("vend/v1/m1/status", b"m1 online", qos=1)
        assert await next_message(cloud) == ("vend/v1/m1/status", b"m1 online")


async def test_a_new_password_replaces_the_old_one(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    async with mosquitto.accounts() as accounts:
        await accounts.set_password("m1", "rotated")
    assert await refused(port, "m1", machine_password("m1"))
    assert await reaches(port, "m1", "rotated")
    async with mosquitto.accounts() as accounts:  # add of an existing machine: a new password
        await accounts.add("m1", "added-again")
    assert await refused(port, "m1", "rotated")
    assert await reaches(port, "m1", "added-again")


async def test_a_disabled_machine_is_dropped_at_once_and_refused_until_enabled(
    mosquitto: Mosquitto,
) -> None:
    port = mosquitto.port
    will = aiomqtt.Will("vend/v1/m1/status", b"m1 offline", qos=1)
    m1 = aiomqtt.Client(
        "127.0.0.1", port, username="m1", password=machine_password("m1"), will=will
    )
    async with client(port, CLOUD_USER) as cloud, m1, mosquitto.accounts() as accounts:
        await cloud.subscribe("vend/v1/+/status", qos=1)
        await m1.subscribe("vend/v1/m1/cmd/#", qos=1)
        await accounts.disable("m1")
        with pytest.raises(aiomqtt.MqttError, match="Disconnected"):
            await next_message(m1)
        async with client(port, "m2") as m2:  # m1's will was not sent: m2's status comes first
            await m2.publish("vend/v1/m2/status", b"m2 online", qos=1)
            assert await next_message(cloud) == ("vend/v1/m2/status", b"m2 online")
    assert await refused(port, "m1", machine_password("m1"))
    async with mosquitto.accounts() as accounts:
        await accounts.add("m1", "while-disabled")  # a new password does not lift a revoke
    assert await refused(port, "m1", "while-disabled")
    async with mosquitto.accounts() as accounts:
        await accounts.enable("m1")
    assert await reaches(port, "m1", "while-disabled")


async def test_a_removed_machine_is_refused_and_removing_it_again_is_no_error(
    mosquitto: Mosquitto,
) -> None:
    port = mosquitto.port
    async with mosquitto.accounts() as accounts:
        await accounts.remove("m1")
        await accounts.remove("m1")
        with pytest.raises(UnknownMachine, match="m1"):
            await accounts.set_password("m1", "too late")
        for change in (accounts.disable, accounts.enable):
            with pytest.raises(UnknownMachine, match="m1"):
                await change("m1")
    assert await refused(port, "m1", machine_password("m1"))
    async with mosquitto.accounts() as accounts:
        await accounts.add("m1", "back again")
    assert await reaches(port, "m1", "back again")


async def test_the_clouds_login_keeps_working_while_machines_change(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    async with client(port, CLOUD_USER) as cloud, mosquitto.accounts() as accounts:
        await cloud.subscribe("vend/v1/+/evt/+", qos=1)
        await accounts.add(FRESH, "fresh")
        await accounts.set_password(FRESH, "fresher")
        await accounts.disable(FRESH)
        await accounts.enable(FRESH)
        await accounts.remove(FRESH)
        # calls may overlap: each waits for the answer that carries its own correlationData
        await asyncio.gather(*(accounts.add(machine, "many") for machine in ("m40", "m41")))
        async with client(port, "m3") as m3:
            await m3.publish("vend/v1/m3/evt/hello", b"still there?", qos=1)
            assert await next_message(cloud) == ("vend/v1/m3/evt/hello", b"still there?")
    for machine in ("m40", "m41"):
        assert await reaches(port, machine, "many")


async def test_machine_changes_never_touch_a_cloud_login(mosquitto: Mosquitto) -> None:
    async with mosquitto.accounts() as accounts:
        for change in (
            accounts.add(CLOUD_USER_2, "taken over"),
            accounts.set_password(CLOUD_USER_2, "taken over"),
            accounts.disable(CLOUD_USER_2),
            accounts.remove(CLOUD_USER_2),
        ):
            with pytest.raises(BrokerAccountError, match="refusing to change it"):
                await change
        with pytest.raises(MachineIdError):
            await accounts.add("m1/evt", "a topic level is no machine id")
    async with client(mosquitto.port, CLOUD_USER_2) as replica:
        await replica.subscribe("vend/v1/+/status", qos=1)


async def test_an_admin_login_without_the_plugins_topics_gets_a_clear_error(
    mosquitto: Mosquitto,
) -> None:
    machine = mosquitto.accounts("m1", machine_password("m1"))  # a machine may not use $CONTROL
    with pytest.raises(BrokerAccountError, match="lacks the cloud's role"):
        async with machine:
            pass


# -- init-dynsec's file ---------------------------------------------------------------------------


@pytest.fixture
def broker_folder() -> Iterator[Path]:
    if shutil.which("mosquitto") is None:
        unavailable("mosquitto", "no `mosquitto` binary on PATH (apt install mosquitto)")
    folder = Path(tempfile.mkdtemp(prefix="vendgate-init-dynsec-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.mosquitto
async def test_mosquitto_loads_the_file_init_dynsec_writes(broker_folder: Path) -> None:
    broker = Mosquitto(broker_folder)
    broker.prepare(provision=False)
    secret = broker_folder / "admin.secret"
    secret.write_text("root-of-trust\n")
    dynsec = broker_folder / DYNSEC_FILE
    args = ["broker", "init-dynsec", "--file", str(dynsec), "--admin-user", "ops"]
    assert main([*args, "--password-file", str(secret)]) == 0
    assert dynsec.stat().st_mode & 0o777 == 0o600
    assert main([*args, "--password", "again"]) == 1  # never over an existing file
    give_to_mosquitto(dynsec)
    broker.start()
    try:
        port = broker.port
        assert await refused(port, None, None)
        assert await refused(port, "ops", "root-of-trust\n")
        async with client(port, "ops", "root-of-trust") as ops:  # the cloud's role: everything
            await ops.subscribe("$share/cloud/vend/v1/+/evt/+", qos=1)
            await ops.publish("vend/v1/m7/evt/probe", b"through the share", qos=1)
            assert await next_message(ops) == ("vend/v1/m7/evt/probe", b"through the share")
        async with broker.accounts("ops", "root-of-trust") as accounts:
            await accounts.add("m7", "seven")
        assert await reaches_as(port, "ops", "root-of-trust", "m7", "seven")
    finally:
        broker.stop()
    saved = json.loads(dynsec.read_text())  # the plugin rewrote it with the new machine
    assert {c["username"] for c in saved["clients"]} == {"ops", "m7"}


async def reaches_as(port: int, cloud: str, cloud_password: str, machine: str, pw: str) -> bool:
    topic = f"vend/v1/{machine}/cmd/ping"
    async with client(port, machine, pw) as mqtt, client(port, cloud, cloud_password) as admin:
        await mqtt.subscribe(f"vend/v1/{machine}/cmd/+", qos=1)
        await admin.publish(topic, b"ping", qos=1)
        return await next_message(mqtt) == (topic, b"ping")


def test_the_password_hash_is_the_one_mosquitto_ctrl_writes(tmp_path: Path) -> None:
    if shutil.which("mosquitto_ctrl") is None:
        pytest.skip("no mosquitto_ctrl (Debian's mosquitto-clients) to compare with")
    theirs = tmp_path / "ctrl.json"
    subprocess.run(
        ["mosquitto_ctrl", "dynsec", "init", str(theirs), "admin", "pässword"],
        check=True,
        capture_output=True,
    )
    client_entry = json.loads(theirs.read_text())["clients"][0]
    salt = base64.b64decode(client_entry["salt"])
    ours = hashed_password("pässword", salt, client_entry["iterations"])
    assert ours["password"] == client_entry["password"]
    assert hashed_password("pässword")["salt"] != client_entry["salt"]  # a new salt each time


def test_the_initial_file_denies_by_default_and_names_the_prefix() -> None:
    config = initial_config("vendgate-cloud", "secret", "fleet/v2")
    assert config["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    topics = {acl["topic"] for acl in config["roles"][0]["acls"]}
    assert topics == {"fleet/v2/#", "$share/+/fleet/v2/#", "$CONTROL/dynamic-security/#"}
    with pytest.raises(ValueError, match="empty"):
        initial_config("vendgate-cloud", "", "vend/v1")


def test_the_account_command_says_in_one_line_what_went_wrong(
    mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = f"mqtt://vendgate-admin:{CLOUD_PASSWORD}@127.0.0.1:{mosquitto.port}"
    account = ["broker", "account", "--url", admin]
    assert main([*account, "disable", "ghost"]) == 1
    assert capsys.readouterr().err.strip() == (
        "vendgate: error: the broker has no account for machine 'ghost'"
    )
    wrong = admin.replace(CLOUD_PASSWORD, "wrong")
    assert main(["broker", "account", "--url", wrong, "enable", "m1"]) == 1
    assert "cannot log in to the broker" in capsys.readouterr().err
    assert main([*account, "add", "m1/x", "--password", "p"]) == 2
    assert "machine id must match" in capsys.readouterr().err
    assert main([*account, "set-password", "m1", "--password", "via the command"]) == 0
    assert "m1: set-password done" in capsys.readouterr().out

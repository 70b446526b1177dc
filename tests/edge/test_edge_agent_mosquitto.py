"""The agent against a real mosquitto with the repo's config, where only mosquitto can show it:
refused passwords, persistent sessions, and the last will of a killed process.

The scenarios that also run on amqtt (a vend with credentials and ACL, a broker restart during a
vend) are in test_edge_agent_brokers.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.mosquitto import CLOUD_PASSWORD, CLOUD_USER, Mosquitto, machine_password

from vendgate.edge import EdgeAgent, EdgeConfig, SqliteStore
from vendgate.protocol.mqtt import Authorized, Started, Status, StatusState

if TYPE_CHECKING:
    from conftest import Cloud, EdgeScene, FakeCashless, MqttBroker
    from support.machine import LogLines

CloudFor = Callable[..., AbstractAsyncContextManager["Cloud"]]
CLOUD_LOGIN = {"username": CLOUD_USER, "password": CLOUD_PASSWORD}


@pytest.fixture
def broker(on_mosquitto: MqttBroker) -> MqttBroker:
    """This module's scene runs on mosquitto only (machine m2 with its password)."""
    return on_mosquitto


async def test_a_wrong_password_is_retried_without_crashing(
    mosquitto: Mosquitto,
    tmp_path: Path,
    edge_config: Callable[..., EdgeConfig],
    fake_cashless: type[FakeCashless],
    agent_log: LogLines,
) -> None:
    config = edge_config(mosquitto.url, tmp_path, "m3", mqtt_password="wrong")
    agent = EdgeAgent(config, device=fake_cashless(), store=SqliteStore(config.outbox_path))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))

    await agent_log.wait_for("event=mqtt.connect_failed", "machine_id=m3", count=3)  # it retries
    assert not agent.link.connected
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 10)

    assert agent_log.matches("event=mqtt.connected") == []


async def test_a_command_sent_while_the_machine_was_offline_is_delivered_on_return(
    scene: EdgeScene, authorized_now: Callable[..., Authorized]
) -> None:
    async with scene.agent():
        pass  # the broker now holds a persistent session for m2
    async with scene.cloud() as cloud:
        await cloud.send(authorized_now("v-offline"))
        reader = scene.reader()
        async with scene.agent(reader):
            started = await cloud.next(Started)

    assert started.vend_id == "v-offline"
    assert reader.begun == [2500]


# -- `vendgate edge` as a process, its serial port a pty with no board behind it ---------------


@pytest.fixture
def bare_pty() -> Iterator[str]:
    """A pseudo-terminal with nobody on the other side: a vend board that is switched off."""
    controller, device = os.openpty()
    try:
        yield os.ttyname(device)
    finally:
        os.close(controller)
        os.close(device)


@asynccontextmanager
async def edge_process(*args: str, **env: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``vendgate edge ARGS`` with ``env`` added to ours; killed at the end if still running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vendgate", "edge", *args, env={**os.environ, **env}
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


@pytest.mark.pty
async def test_a_killed_agent_leaves_its_last_will(
    mosquitto: Mosquitto, tmp_path: Path, cloud_for: CloudFor, bare_pty: str
) -> None:
    configured_by_environment = {
        "VENDGATE_MACHINE_ID": "m4",
        "VENDGATE_MQTT_URL": mosquitto.url,
        "VENDGATE_MQTT_PASSWORD": machine_password("m4"),
        "VENDGATE_SERIAL": bare_pty,
        "VENDGATE_DATA_DIR": str(tmp_path),
    }
    async with (
        edge_process(**configured_by_environment) as process,
        cloud_for(mosquitto.url, "m4", **CLOUD_LOGIN) as cloud,
    ):
        online = await cloud.next(Status)
        process.send_signal(signal.SIGKILL)
        offline = await cloud.next(Status)

    assert online.state == StatusState.ONLINE
    assert (offline.state, offline.boot_id) == (StatusState.OFFLINE, online.boot_id)


@pytest.mark.pty
async def test_sigterm_says_offline_itself_and_exits_cleanly(
    mosquitto: Mosquitto, tmp_path: Path, cloud_for: CloudFor, bare_pty: str
) -> None:
    # configured by flags this time (the last-will test above uses the environment)
    flags = ["--machine-id", "m5", "--mqtt-url", mosquitto.url, "--serial", bare_pty]
    environment = {
        "VENDGATE_MQTT_PASSWORD": machine_password("m5"),
        "VENDGATE_DATA_DIR": str(tmp_path),
    }
    async with (
        edge_process(*flags, **environment) as process,
        cloud_for(mosquitto.url, "m5", **CLOUD_LOGIN) as cloud,
    ):
        online = await cloud.next(Status)
        process.send_signal(signal.SIGTERM)
        offline = await cloud.next(Status)
        code = await asyncio.wait_for(process.wait(), 10)

    assert code == 0
    assert (offline.state, offline.boot_id) == (StatusState.OFFLINE, online.boot_id)

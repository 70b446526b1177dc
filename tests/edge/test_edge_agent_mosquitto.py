"""The agent against a real mosquitto with the repo's config: passwords, ACL, persistent
sessions, broker restarts and the last will of a killed process."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.mosquitto import CLOUD_PASSWORD, CLOUD_USER, Mosquitto, machine_password

from vendgate.edge import EdgeAgent, EdgeConfig, SqliteStore
from vendgate.protocol import Money
from vendgate.protocol.mqtt import (
    Authorized,
    Dispensed,
    Ended,
    Started,
    Status,
    StatusState,
)

if TYPE_CHECKING:
    from conftest import Cloud, FakeCashless

AgentRunning = Callable[..., AbstractAsyncContextManager[EdgeAgent]]
CloudFor = Callable[..., AbstractAsyncContextManager["Cloud"]]
Waiter = Callable[..., Awaitable[None]]
CLOUD_LOGIN = {"username": CLOUD_USER, "password": CLOUD_PASSWORD}


@pytest.fixture
def config(
    mosquitto: Mosquitto, tmp_path: Path, edge_config: Callable[..., EdgeConfig]
) -> EdgeConfig:
    return edge_config(mosquitto.url, tmp_path, "m2", mqtt_password=machine_password("m2"))


async def test_a_vend_through_mosquitto_with_credentials_and_acl(
    mosquitto: Mosquitto,
    config: EdgeConfig,
    fake_cashless: type[FakeCashless],
    agent_running: AgentRunning,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
) -> None:
    reader = fake_cashless()
    async with (
        cloud_for(mosquitto.url, "m2", **CLOUD_LOGIN) as cloud,
        agent_running(config, reader),
    ):
        await cloud.send(authorized_now("v1", 3000))
        started = await cloud.next(Started)
        reader.vend(item=12, price=2500)
        reader.end()
        dispensed = await cloud.next(Dispensed)
        ended = await cloud.next(Ended)
        await cloud.ack(started, dispensed, ended)

    assert (dispensed.item, dispensed.price) == (12, Money(2500, "NOK"))
    assert ended.total == Money(2500, "NOK")
    assert [e.seq for e in (started, dispensed, ended)] == sorted(
        [started.seq, dispensed.seq, ended.seq]
    )


async def test_a_wrong_password_is_retried_without_crashing(
    mosquitto: Mosquitto,
    tmp_path: Path,
    edge_config: Callable[..., EdgeConfig],
    fake_cashless: type[FakeCashless],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="vendgate.edge")
    config = edge_config(mosquitto.url, tmp_path, "m3", mqtt_password="wrong")
    agent = EdgeAgent(config, device=fake_cashless(), store=SqliteStore(config.outbox_path))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))

    await asyncio.sleep(1.5)
    assert not agent.link.connected
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 10)

    failures = [r.getMessage() for r in caplog.records if "mqtt.connect_failed" in r.getMessage()]
    assert len(failures) >= 2  # it kept trying


async def test_a_command_sent_while_the_machine_was_offline_is_delivered_on_return(
    mosquitto: Mosquitto,
    config: EdgeConfig,
    fake_cashless: type[FakeCashless],
    agent_running: AgentRunning,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
) -> None:
    async with agent_running(config, fake_cashless()):
        pass  # the broker now holds a persistent session for m2
    async with cloud_for(mosquitto.url, "m2", **CLOUD_LOGIN) as cloud:
        await cloud.send(authorized_now("v-offline"))
        reader = fake_cashless()
        async with agent_running(config, reader):
            started = await cloud.next(Started)

    assert started.vend_id == "v-offline"
    assert reader.begun == [2500]


async def test_a_broker_restart_during_a_vend_loses_nothing(
    mosquitto: Mosquitto,
    config: EdgeConfig,
    fake_cashless: type[FakeCashless],
    agent_running: AgentRunning,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
    waiter: Waiter,
) -> None:
    reader = fake_cashless()
    async with agent_running(config, reader) as agent:
        async with cloud_for(mosquitto.url, "m2", **CLOUD_LOGIN) as cloud:
            await cloud.send(authorized_now("v1"))
            await cloud.next(Started)
        await asyncio.to_thread(mosquitto.stop)
        await waiter(lambda: not agent.link.connected)
        reader.vend(item=4, price=1000)
        reader.end()
        await asyncio.to_thread(mosquitto.start)
        async with cloud_for(mosquitto.url, "m2", **CLOUD_LOGIN) as cloud:
            ended = await cloud.next(Ended, within_s=15)

    assert [(line.item, line.success) for line in ended.dispensed] == [(4, True)]
    assert ended.total == Money(1000, "NOK")


@pytest.fixture
def bare_pty() -> Iterator[str]:
    """A pseudo-terminal with nobody on the other side: a vend board that is switched off."""
    controller, device = os.openpty()
    try:
        yield os.ttyname(device)
    finally:
        os.close(controller)
        os.close(device)


@pytest.mark.pty
async def test_a_killed_agent_leaves_its_last_will(
    mosquitto: Mosquitto, tmp_path: Path, cloud_for: CloudFor, bare_pty: str
) -> None:
    env = {
        **os.environ,
        "VENDGATE_MACHINE_ID": "m4",
        "VENDGATE_MQTT_URL": mosquitto.url,
        "VENDGATE_MQTT_PASSWORD": machine_password("m4"),
        "VENDGATE_SERIAL": bare_pty,
        "VENDGATE_DATA_DIR": str(tmp_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vendgate", "edge", env=env
    )
    try:
        async with cloud_for(mosquitto.url, "m4", **CLOUD_LOGIN) as cloud:
            online = await cloud.next(Status)
            process.send_signal(signal.SIGKILL)
            offline = await cloud.next(Status)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()

    assert online.state == StatusState.ONLINE
    assert (offline.state, offline.boot_id) == (StatusState.OFFLINE, online.boot_id)


@pytest.mark.pty
async def test_sigterm_says_offline_itself_and_exits_cleanly(
    mosquitto: Mosquitto, tmp_path: Path, cloud_for: CloudFor, bare_pty: str
) -> None:
    env = {
        **os.environ,
        "VENDGATE_MQTT_PASSWORD": machine_password("m5"),
        "VENDGATE_DATA_DIR": str(tmp_path),
    }
    args = ["--machine-id", "m5", "--mqtt-url", mosquitto.url, "--serial", bare_pty]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vendgate", "edge", *args, env=env
    )
    try:
        async with cloud_for(mosquitto.url, "m5", **CLOUD_LOGIN) as cloud:
            online = await cloud.next(Status)
            process.send_signal(signal.SIGTERM)
            offline = await cloud.next(Status)
            code = await asyncio.wait_for(process.wait(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert code == 0
    assert (offline.state, offline.boot_id) == (StatusState.OFFLINE, online.boot_id)

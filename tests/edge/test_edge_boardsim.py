"""The agent with its real reader on a pty, against the real vend board simulator.

A test plays the cloud with a plain MQTT client and the customer with the board's keypad. Each
scenario runs on both tiers: the in-process amqtt broker and a real mosquitto. The crash test
runs ``vendgate edge`` as a process and kills it with its test hook right after the item dropped
and the ``dispensed`` event was committed, before it was published.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.mosquitto import CLOUD_PASSWORD, CLOUD_USER, Mosquitto, machine_password

from vendgate.boardsim import BoardSim, VendOutcome, VmcConfig
from vendgate.broker import EmbeddedBroker
from vendgate.edge import EdgeConfig, build_agent
from vendgate.protocol import Money
from vendgate.protocol.mqtt import (
    Authorized,
    Dispensed,
    Ended,
    EndReason,
    Hello,
    Rejected,
    RejectReason,
    Started,
    Status,
)

if TYPE_CHECKING:
    from conftest import Cloud

pytestmark = pytest.mark.pty

CloudFor = Callable[..., AbstractAsyncContextManager["Cloud"]]
AuthorizedNow = Callable[..., Authorized]
COLA = 1  # selection 1: item 1, 25.00 NOK (the simulator's default planogram)
COLA_PRICE = Money(2500, "NOK")


@dataclass
class Setup:
    """One tier: where the broker is and how each side logs in."""

    url: str
    machine_id: str
    data_dir: Path
    cloud_for: CloudFor
    authorized: AuthorizedNow
    stop_broker: Callable[[], Awaitable[None]]
    start_broker: Callable[[], Awaitable[None]]
    machine_password: str = ""
    cloud_login: dict[str, str] = field(default_factory=dict)

    def config(self, serial: str, **overrides: str) -> EdgeConfig:
        flags = {
            "machine_id": self.machine_id,
            "mqtt_url": self.url,
            "mqtt_password": self.machine_password,
            "serial": serial,
            "data_dir": str(self.data_dir),
            "resend_interval_s": "0.5",
            "reconnect_min_s": "0.1",
            "reconnect_max_s": "0.5",
            **overrides,
        }
        return EdgeConfig.load(flags, {})

    def cloud(self) -> AbstractAsyncContextManager[Cloud]:
        return self.cloud_for(self.url, self.machine_id, **self.cloud_login)

    def agent_env(self, serial: str, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "VENDGATE_MACHINE_ID": self.machine_id,
            "VENDGATE_MQTT_URL": self.url,
            "VENDGATE_MQTT_PASSWORD": self.machine_password,
            "VENDGATE_SERIAL": serial,
            "VENDGATE_DATA_DIR": str(self.data_dir),
            "VENDGATE_RESEND_INTERVAL_S": "0.5",
            **extra,
        }


@pytest.fixture
def amqtt_setup(
    amqtt_broker: EmbeddedBroker,
    tmp_path: Path,
    cloud_for: CloudFor,
    authorized_now: AuthorizedNow,
) -> Setup:
    port = amqtt_broker.port
    assert port is not None
    replacement: list[EmbeddedBroker] = []

    async def start() -> None:
        replacement.append(await _started(EmbeddedBroker(port=port)))

    return Setup(
        amqtt_broker.url, "m1", tmp_path, cloud_for, authorized_now, amqtt_broker.stop, start
    )


async def _started(broker: EmbeddedBroker) -> EmbeddedBroker:
    await broker.start()
    return broker


@pytest.fixture
def mosquitto_setup(
    mosquitto: Mosquitto, tmp_path: Path, cloud_for: CloudFor, authorized_now: AuthorizedNow
) -> Setup:
    return Setup(
        mosquitto.url,
        "m6",
        tmp_path,
        cloud_for,
        authorized_now,
        lambda: asyncio.to_thread(mosquitto.stop),
        lambda: asyncio.to_thread(mosquitto.start),
        machine_password("m6"),
        {"username": CLOUD_USER, "password": CLOUD_PASSWORD},
    )


@asynccontextmanager
async def board() -> AsyncIterator[BoardSim]:
    async with BoardSim(config=VmcConfig(poll_interval_s=0.05, dispense_s=0.2)) as sim:
        yield sim


@asynccontextmanager
async def agent_on(setup: Setup, sim: BoardSim) -> AsyncIterator[None]:
    """The agent in this process with the real ``SerialCashless`` on the board's pty."""
    agent = build_agent(setup.config(sim.device_path))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        async with asyncio.timeout(10):
            await sim.wait_ready()
        yield
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task


async def customer_buys(sim: BoardSim, selection: int) -> VendOutcome:
    async with asyncio.timeout(10):
        await sim.wait_session()
        return await sim.select(selection)


# -- one vend, end to end ---------------------------------------------------------------------


async def one_vend_then_ack(setup: Setup) -> None:
    async with board() as sim, setup.cloud() as cloud, agent_on(setup, sim):
        await cloud.send(setup.authorized("v1", 3000))
        started = await cloud.next(Started)
        outcome = await customer_buys(sim, COLA)
        dispensed = await cloud.next(Dispensed)
        ended = await cloud.next(Ended)
        await cloud.ack(started, dispensed, ended)
        await asyncio.sleep(0.3)  # the ack lands
        count = len(cloud.received)
        await asyncio.sleep(1.5)  # three resend intervals: nothing more may come
        after_ack = [m for m in cloud.received[count:] if not isinstance(m, Status)]

    assert outcome.result == "success"
    assert (started.vend_id, started.funds) == ("v1", Money(3000, "NOK"))
    assert (dispensed.vend_id, dispensed.item, dispensed.price) == ("v1", 1, COLA_PRICE)
    assert dispensed.success
    assert (ended.reason, ended.total) == (EndReason.COMPLETED, COLA_PRICE)
    assert [(line.item, line.success) for line in ended.dispensed] == [(1, True)]
    assert after_ack == []


async def test_a_vend_with_the_real_board_on_amqtt(amqtt_setup: Setup) -> None:
    await one_vend_then_ack(amqtt_setup)


async def test_a_vend_with_the_real_board_on_mosquitto(mosquitto_setup: Setup) -> None:
    await one_vend_then_ack(mosquitto_setup)


# -- the broker goes away during a vend -------------------------------------------------------


async def broker_down_during_vend(setup: Setup) -> None:
    async with board() as sim, agent_on(setup, sim):
        async with setup.cloud() as cloud:
            await cloud.send(setup.authorized("v1"))
            await cloud.next(Started)
        await setup.stop_broker()
        outcome = await customer_buys(sim, COLA)  # approval is local
        await setup.start_broker()
        async with setup.cloud() as cloud:
            ended = await cloud.next(Ended, within_s=15)
            dispensed = cloud.events_of("v1")

    assert outcome.result == "success"
    assert ended.total == COLA_PRICE
    assert [type(e) for e in dispensed if not isinstance(e, Started)] == [Dispensed, Ended]


async def test_the_broker_down_during_a_vend_on_amqtt(amqtt_setup: Setup) -> None:
    await broker_down_during_vend(amqtt_setup)


async def test_the_broker_down_during_a_vend_on_mosquitto(mosquitto_setup: Setup) -> None:
    await broker_down_during_vend(mosquitto_setup)


# -- killed after the item dropped, before the event went out ---------------------------------


async def killed_after_the_drop(setup: Setup) -> None:
    async with board() as sim, setup.cloud() as cloud:
        crash = {"VENDGATE_EDGE_CRASH_AT": "after_outbox_write:evt/dispensed"}
        first = await spawn_agent(setup.agent_env(sim.device_path, **crash))
        try:
            await online(cloud, sim)
            await cloud.send(setup.authorized("v1"))
            await cloud.next(Started)
            outcome = await customer_buys(sim, COLA)
            assert await asyncio.wait_for(first.wait(), 10) == 137
            assert not any(isinstance(m, Dispensed) for m in cloud.received)

            second = await spawn_agent(setup.agent_env(sim.device_path))
            try:
                ended = await cloud.next(Ended, within_s=20)
                await cloud.next(Started)  # re-sent too, same id
            finally:
                await stop(second)
        finally:
            await stop(first)
        committed = cloud.events_of("v1")

    assert outcome.result == "success"  # the customer got the item
    assert [type(e) for e in committed] == [Started, Dispensed, Ended]  # each exactly once
    dispensed = committed[1]
    assert isinstance(dispensed, Dispensed)
    assert (dispensed.item, dispensed.price, dispensed.success) == (1, COLA_PRICE, True)
    assert (ended.reason, ended.total) == (EndReason.BOARD_RESET, COLA_PRICE)


async def online(cloud: Cloud, sim: BoardSim) -> None:
    """Until the agent process is subscribed (its hello follows) and its reader enabled."""
    await cloud.next(Hello, within_s=15)
    async with asyncio.timeout(10):
        await sim.wait_ready()


async def spawn_agent(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "vendgate", "edge", env=env)


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def test_an_agent_killed_after_the_drop_reports_it_once_on_amqtt(
    amqtt_setup: Setup,
) -> None:
    await killed_after_the_drop(amqtt_setup)


async def test_an_agent_killed_after_the_drop_reports_it_once_on_mosquitto(
    mosquitto_setup: Setup,
) -> None:
    await killed_after_the_drop(mosquitto_setup)


# -- bad commands with the real board ---------------------------------------------------------


async def test_expired_repeated_and_malformed_commands_with_the_real_board(
    amqtt_setup: Setup,
) -> None:
    setup = amqtt_setup
    async with board() as sim, setup.cloud() as cloud, agent_on(setup, sim):
        topic = str(cloud.tree.command(setup.machine_id, "authorized"))
        await cloud.client.publish(topic, b'{"v": 1, "id": "x", "vend_id": 7}', qos=1)
        await cloud.send(setup.authorized("old", ttl_s=-1))
        expired = await cloud.next(Rejected)
        await cloud.send(setup.authorized("v1"))
        started = await cloud.next(Started)
        await cloud.send(setup.authorized("v1"))
        again = await cloud.next(Started)
        await customer_buys(sim, COLA)
        ended = await cloud.next(Ended)

    sessions = [e for e in sim.events if type(e).__name__ == "SessionOpened"]
    assert (expired.vend_id, expired.reason) == ("old", RejectReason.EXPIRED)
    assert again == started
    assert len(sessions) == 1
    assert ended.total == COLA_PRICE

"""The agent in this process with its real reader on the board simulator's pty.

A test plays the cloud with a plain MQTT client and the customer with the board's keypad API.
Stopping the broker mid-vend runs on both tiers (amqtt: stopped and restarted on the same port;
mosquitto: the process stopped and started). The all-processes runs (vend, SIGKILL) are in
test_edge_processes.py.
"""

from __future__ import annotations

import asyncio
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
    Rejected,
    RejectReason,
    Started,
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


# -- the broker goes away during a vend -------------------------------------------------------


async def broker_down_during_vend(setup: Setup) -> None:
    async with board() as sim, agent_on(setup, sim):
        async with setup.cloud() as cloud:
            await cloud.send_planogram()
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
        await cloud.send_planogram()
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

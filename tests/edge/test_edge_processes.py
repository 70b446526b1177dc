"""The issue's acceptance runs, every part a real process: ``vendgate board-sim`` on a pty (its
keypad over TCP), ``vendgate edge`` on that pty, a broker, and the test as the cloud with its own
plain MQTT client. Each runs on the amqtt tier and on the mosquitto tier.

1. A vend: ``authorized`` -> the customer selects -> ``started``, ``dispensed`` (item and price
   right) and ``ended`` arrive; after the cloud's ``ack`` the agent's next three resend checks
   re-send nothing (its ``event=outbox.checked`` lines on stderr, at ``--log-level DEBUG``).
2. The agent is killed (``os._exit(137)``, by the ``faults`` of the test-only entry point
   ``tests/support/crashing.py`` running ``vendgate edge``) after the item dropped and the
   ``dispensed`` event was committed, before it was published; the restarted agent delivers it,
   and an idempotent consumer sees every event of the vend exactly once.
3. Price authority: the board asks its own price, the agent approves the planogram's (the board
   simulator's own record shows what it charged), and refuses an item the planogram lacks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
from support.crashing import COMMAND as CRASHING
from support.crashing import EXIT_STATUS
from support.machine import BoardProcess, LogLines, board_process, edge_env, start_edge, stop
from support.mosquitto import CLOUD_PASSWORD, CLOUD_USER, Mosquitto, machine_password

from vendgate.broker import EmbeddedBroker
from vendgate.protocol import Money
from vendgate.protocol.mqtt import (
    Authorized,
    Dispensed,
    Ended,
    EndReason,
    Hello,
    Started,
)

if TYPE_CHECKING:
    from conftest import Cloud

pytestmark = pytest.mark.pty

CloudFor = Callable[..., AbstractAsyncContextManager["Cloud"]]
M = TypeVar("M", Started, Ended)
COLA_PRICE = Money(2500, "NOK")  # selection 1 of the simulator's default planogram: item 1


async def start_crashing_agent(
    env: dict[str, str], point: str, stderr: Path
) -> asyncio.subprocess.Process:
    """``vendgate edge`` through the test-only entry point: it exits with 137 at ``point``."""
    with stderr.open("wb") as errors:
        return await asyncio.create_subprocess_exec(
            *CRASHING, "--crash-at", point, "edge", env=env, stderr=errors
        )


class Tier:
    def __init__(
        self, url: str, machine_id: str, password: str, cloud_login: dict[str, str]
    ) -> None:
        self.url, self.machine_id, self.password = url, machine_id, password
        self.cloud_login = cloud_login

    def agent_env(self, pty: str, data_dir: Path) -> dict[str, str]:
        return edge_env(
            self.url, self.machine_id, self.password, pty, data_dir, resend_interval_s="0.5"
        )


@pytest.fixture
def amqtt_tier(amqtt_broker: EmbeddedBroker) -> Tier:
    return Tier(amqtt_broker.url, "m1", "", {})


@pytest.fixture
def mosquitto_tier(mosquitto: Mosquitto) -> Tier:
    cloud_login = {"username": CLOUD_USER, "password": CLOUD_PASSWORD}
    return Tier(mosquitto.url, "m7", machine_password("m7"), cloud_login)


async def ready(cloud: Cloud, board: BoardProcess) -> None:
    """The agent is subscribed (its hello follows) and the board has enabled its reader."""
    await cloud.next(Hello, within_s=15)
    await board.wait_status("reader=ready")


# -- 1. a vend, then the ack ends the re-sends ------------------------------------------------


async def vend_and_ack(
    tier: Tier, tmp_path: Path, cloud_for: CloudFor, authorized_now: Callable[..., Authorized]
) -> None:
    async with (
        board_process() as board,
        cloud_for(tier.url, tier.machine_id, **tier.cloud_login) as cloud,
    ):
        log = LogLines()
        agent = await start_edge(tier.agent_env(board.pty, tmp_path), log)
        try:
            await ready(cloud, board)
            await cloud.send_planogram()
            await cloud.send(authorized_now("v1", 3000))
            started = await cloud.next(Started)
            await board.buy(1)
            dispensed = await cloud.next(Dispensed)
            ended = await cloud.next(Ended)
            await cloud.ack(started, dispensed, ended)
            acked = await log.wait_for("event=outbox.acked", "acked=3", "outbox=0")
            await log.wait_for("event=outbox.checked", "connected=true", after=acked, count=3)
            checks = [log.lines[i] for i in log.matches("event=outbox.", after=acked)]
            await board.wait_status("last_vend=slot:1,item:1,success")
        finally:
            await stop(agent)
            await log.closed()

    assert (started.vend_id, started.funds) == ("v1", Money(3000, "NOK"))
    assert (dispensed.item, dispensed.price, dispensed.success) == (1, COLA_PRICE, True)
    assert (ended.reason, ended.total) == (EndReason.COMPLETED, COLA_PRICE)
    # three resend-timer checks (three intervals) since the ack, and none re-sent anything
    assert len(checks) >= 3
    assert all("event=outbox.checked" in line and "resent=0" in line for line in checks), checks
    assert agent.returncode == 0


async def test_vend_end_to_end_with_processes_on_amqtt(
    amqtt_tier: Tier,
    tmp_path: Path,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
) -> None:
    await vend_and_ack(amqtt_tier, tmp_path, cloud_for, authorized_now)


async def test_vend_end_to_end_with_processes_on_mosquitto(
    mosquitto_tier: Tier,
    tmp_path: Path,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
) -> None:
    await vend_and_ack(mosquitto_tier, tmp_path, cloud_for, authorized_now)


# -- 2. killed between the commit and the publish ---------------------------------------------


async def killed_after_the_drop(
    tier: Tier, tmp_path: Path, cloud_for: CloudFor, authorized_now: Callable[..., Authorized]
) -> None:
    point = "after_outbox_write:evt/dispensed"
    errors = tmp_path / "crashing.stderr"
    async with (
        board_process() as board,
        cloud_for(tier.url, tier.machine_id, **tier.cloud_login) as cloud,
    ):
        first = await start_crashing_agent(tier.agent_env(board.pty, tmp_path), point, errors)
        second = None
        try:
            await ready(cloud, board)
            await cloud.send_planogram()
            await cloud.send(authorized_now("v1"))
            await cloud.next(Started)
            await board.buy(1)
            assert await asyncio.wait_for(first.wait(), 15) == EXIT_STATUS
            assert f"crashing: {point} reached" in errors.read_text()
            await board.wait_status("last_vend=slot:1,item:1,success")  # the item dropped
            assert not any(isinstance(m, Dispensed) for m in cloud.received)

            second = await start_edge(tier.agent_env(board.pty, tmp_path))
            ended = await cloud.next(Ended, within_s=20)
            await cloud.next(Started)  # re-sent after the restart too, same id
        finally:
            await stop(first)
            if second is not None:
                await stop(second)
    committed = cloud.events_of("v1")
    dispensed = committed[1]

    assert [type(e) for e in committed] == [Started, Dispensed, Ended]  # each exactly once
    assert isinstance(dispensed, Dispensed)
    assert (dispensed.item, dispensed.price, dispensed.success) == (1, COLA_PRICE, True)
    assert (ended.reason, ended.total) == (EndReason.BOARD_RESET, COLA_PRICE)
    received = [m.id for m in cloud.received if isinstance(m, Dispensed)]
    assert set(received) == {dispensed.id}  # re-sends carry the same id


async def test_killed_after_the_drop_on_amqtt(
    amqtt_tier: Tier,
    tmp_path: Path,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
) -> None:
    await killed_after_the_drop(amqtt_tier, tmp_path, cloud_for, authorized_now)


async def test_killed_after_the_drop_on_mosquitto(
    mosquitto_tier: Tier,
    tmp_path: Path,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
) -> None:
    await killed_after_the_drop(mosquitto_tier, tmp_path, cloud_for, authorized_now)


# -- 3. the planogram prices the vend, not the board ------------------------------------------


async def next_for(cloud: Cloud, kind: type[M], vend_id: str) -> M:
    """The next ``kind`` of ``vend_id`` (re-sends of other vends' events are skipped)."""
    while (message := await cloud.next(kind)).vend_id != vend_id:  # type: ignore[attr-defined]
        pass
    return message


async def test_the_planogram_price_is_charged_whatever_the_board_asks_on_amqtt(
    amqtt_tier: Tier,
    tmp_path: Path,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
) -> None:
    tier = amqtt_tier
    # The board asks 35.00 for Cola; it also sells item 9, which the planogram does not list.
    flags = ("--slot", "1:Cola:3500", "--slot", "2:Water:2000:5:9")
    async with (
        board_process(*flags) as board,
        cloud_for(tier.url, tier.machine_id, **tier.cloud_login) as cloud,
    ):
        agent = await start_edge(tier.agent_env(board.pty, tmp_path))
        try:
            await ready(cloud, board)
            await cloud.send_planogram({1: 2500})
            await cloud.send(authorized_now("v1", 4000))
            started = await cloud.next(Started)
            await board.buy(1)
            dispensed = await cloud.next(Dispensed)
            ended = await cloud.next(Ended)
            await cloud.ack(started, dispensed, ended)
            # The board's own record: the item dropped and it deducted the planogram's price.
            await board.wait_status("last_vend=slot:1,item:1,success,charged:2500")

            await cloud.send(authorized_now("v2", 4000))
            await next_for(cloud, Started, "v2")
            await board.buy(2)
            await board.wait_status("last_vend=slot:2,item:9,denied,charged:0")
            refused = await next_for(cloud, Ended, "v2")
        finally:
            await stop(agent)

    assert (dispensed.item, dispensed.success) == (1, True)
    assert (dispensed.price, dispensed.vmc_price) == (Money(2500, "NOK"), Money(3500, "NOK"))
    assert ended.total == Money(2500, "NOK")
    assert (refused.dispensed, refused.total) == ((), Money(0, "NOK"))

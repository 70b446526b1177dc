"""Presence on the production-shaped tier: the real cloud app, the repo's Mosquitto, and each
machine as real processes (``vendgate board-sim`` on a pty, ``vendgate edge`` on it).

1. A machine whose agent is killed (SIGKILL) is offline for the cloud at once: its last will
   wins over its ``online``, and a scan then creates no payment.
2. A machine that looks online but cannot answer right now (its agent frozen with SIGSTOP)
   gets no payment either: the scan pings it first and the ping goes unanswered.
3. The broker restarts in the middle of a purchase, after the item dropped: the edge's events
   reach the cloud without waiting for its resend timer (set to an hour here), and the
   purchase settles: the price captured, the rest released, the receipt posted.
4. A Vipps check-in (merchant-callback QR) pings the machine the same way as a scan.

Every money assertion reads the Vipps simulator's ledger; what dropped is the board
simulator's own record.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest
from flow_support import (
    FAST,
    Cloud,
    FakeEdge,
    cloud_settings,
    eventually,
    ledger,
    machine_row,
    post_webhook,
    receipt_count,
    running_cloud,
    scan,
    seed_machine,
    sqlite_url,
    vends_of,
    wait_for_state,
)
from support.machine import BoardProcess, board_process, edge_env, start_edge, stop
from support.mosquitto import CLOUD_PASSWORD, CLOUD_USER, Mosquitto, machine_password

from vendgate.cloud.machines import SlotSpec
from vendgate.cloud.settings import MqttSettings, TimingSettings
from vendgate.edge import SqliteStore

# Two slots of the board simulator's built-in planogram: the reservation is the highest price.
BOARD_SLOTS = (SlotSpec(1, "Cola 0.5 l", 2500, 1500), SlotSpec(5, "Sandwich", 3500, 1500))
COLA_PRICE, RESERVED = 2500, 3500


def mosquitto_mqtt(mosquitto: Mosquitto, **overrides: object) -> MqttSettings:
    fields: dict[str, object] = {
        "host": "127.0.0.1",
        "port": mosquitto.port,
        "username": CLOUD_USER,
        "password": CLOUD_PASSWORD,
        "shared_subscriptions": True,
        **overrides,
    }
    return MqttSettings(**fields)  # type: ignore[arg-type]


@dataclasses.dataclass
class Shop:
    cloud: Cloud
    board: BoardProcess
    machine_id: str
    env: dict[str, str]
    data_dir: Path
    edge: asyncio.subprocess.Process | None = None

    async def start_edge(self) -> asyncio.subprocess.Process:
        self.edge = await start_edge(self.env)
        await eventually(self._online, what=f"{self.machine_id} online in the cloud")
        await self.board.wait_status("reader=ready")
        return self.edge

    async def _online(self) -> bool:
        return (await machine_row(self.cloud.parts, self.machine_id)).online

    async def offline(self) -> bool:
        return not await self._online()

    def outbox_names(self) -> list[str]:
        return [event.name for event in SqliteStore(self.data_dir / "edge.sqlite3").load().pending]

    def payments(self) -> int:
        return len(self.cloud.sim.payments._payments)


@asynccontextmanager
async def shop(
    mosquitto: Mosquitto,
    tmp_path: Path,
    machine_id: str,
    mqtt: MqttSettings,
    timing: TimingSettings = FAST,
    **edge: str,
) -> AsyncIterator[Shop]:
    """The cloud on mosquitto, one machine registered, its board running; the agent not yet."""
    data_dir = tmp_path / "edge"
    async with (
        running_cloud(cloud_settings(sqlite_url(tmp_path), mqtt, timing)) as cloud,
        board_process() as board,
    ):
        await seed_machine(cloud.parts, machine_id, BOARD_SLOTS)
        env = edge_env(
            mosquitto.url, machine_id, machine_password(machine_id), board.pty, data_dir, **edge
        )
        running = Shop(cloud, board, machine_id, env, data_dir)
        try:
            yield running
        finally:
            if running.edge is not None:
                if running.edge.returncode is None:
                    running.edge.send_signal(signal.SIGCONT)
                await stop(running.edge)


# -- 1. a killed agent ---------------------------------------------------------------------------


@pytest.mark.pty
async def test_a_killed_agent_is_offline_at_once_and_its_scan_creates_no_payment(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with shop(mosquitto, tmp_path, "m3", mosquitto_mqtt(mosquitto)) as running:
        agent = await running.start_edge()
        agent.send_signal(signal.SIGKILL)
        await agent.wait()

        await eventually(running.offline, what="m3 offline (its last will, sent by mosquitto)")
        response = await scan(running.cloud, "m3")
        vends = await vends_of(running.cloud.parts, "m3")
        payments = running.payments()

    assert response.status_code == 409
    assert 'data-state="offline"' in response.text
    assert (vends, payments) == ([], 0)


# -- 2. an agent that cannot answer ----------------------------------------------------------------


@pytest.mark.pty
async def test_a_machine_that_does_not_answer_the_ping_gets_no_payment(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # A short bound here: a frozen process never answers, however long the cloud waits.
    timing = dataclasses.replace(FAST, ping_timeout=1.0)
    async with shop(mosquitto, tmp_path, "m4", mosquitto_mqtt(mosquitto), timing) as running:
        agent = await running.start_edge()
        agent.send_signal(signal.SIGSTOP)  # connected, retained online, but not answering

        response = await scan(running.cloud, "m4")
        vends = await vends_of(running.cloud.parts, "m4")
        payments = running.payments()
        still_online = (await machine_row(running.cloud.parts, "m4")).online

    assert still_online  # the database alone would have let the scan through
    assert response.status_code == 409
    assert 'data-state="offline"' in response.text
    assert (vends, payments) == ([], 0)


@pytest.mark.pty
async def test_a_machine_that_answers_the_ping_gets_its_payment(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with shop(mosquitto, tmp_path, "m5", mosquitto_mqtt(mosquitto)) as running:
        await running.start_edge()
        response = await scan(running.cloud, "m5")
        (vend,) = await vends_of(running.cloud.parts, "m5")

    assert response.status_code == 302
    assert ledger(running.cloud.sim, vend.id).authorized == 0  # created, not approved yet
    assert running.payments() == 1


# -- 3. the broker restarts mid-purchase -----------------------------------------------------------


@pytest.mark.pty
async def test_a_broker_restart_mid_purchase_still_settles_the_purchase(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # The edge's own resend timer is an hour: only the connect and presence paths can deliver.
    # Its reconnects are quick and the cloud's are not, so the edge is back on the broker first.
    mqtt = mosquitto_mqtt(mosquitto, reconnect_delay=2.0)
    edge = {"resend_interval_s": "3600", "reconnect_min_s": "0.05", "reconnect_max_s": "0.2"}
    async with shop(mosquitto, tmp_path, "m6", mqtt, **edge) as running:
        cloud = running.cloud
        await running.start_edge()
        response = await scan(cloud, "m6")
        assert response.status_code == 302, response.text
        (vend,) = await vends_of(cloud.parts, "m6")
        cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))
        await wait_for_state(cloud.parts, vend.id, "vending")  # `started` reached the cloud
        await running.board.wait_status("credit=")

        await asyncio.to_thread(mosquitto.stop)
        answer = await running.board.press("select 1")
        assert answer.startswith("ok"), answer
        dropped = await running.board.wait_status("last_vend=slot:1,item:1,success", "session=none")

        async def written() -> bool:
            return "evt/ended" in running.outbox_names()

        await eventually(written, what="the edge's `ended` in its outbox, the broker down")
        await asyncio.to_thread(mosquitto.start)
        settled = await wait_for_state(cloud.parts, vend.id, "closed")
        receipts = receipt_count(cloud.sim, vend.id)

    payment = ledger(cloud.sim, vend.id)
    assert "last_vend=slot:1,item:1,success" in dropped
    assert settled.outcome == "paid"
    assert (payment.authorized, payment.captured, payment.cancelled) == (
        RESERVED,
        COLA_PRICE,
        RESERVED - COLA_PRICE,
    )
    assert receipts == 1


# -- 4. the check-in path --------------------------------------------------------------------------


def check_in(qr_id: str) -> bytes:
    return msgspec.json.encode({"customerToken": "tok-1", "merchantQrId": qr_id, "msn": "123456"})


@pytest.mark.parametrize(("answers", "payments"), [(False, 0), (True, 1)], ids=["silent", "live"])
async def test_a_check_in_pings_the_machine_too(
    mosquitto: Mosquitto, tmp_path: Path, answers: bool, payments: int
) -> None:
    # Silent: nothing on MQTT answers for m8, although its row says online. A short bound then.
    timing = dataclasses.replace(FAST, ping_timeout=10.0 if answers else 1.0)
    settings = cloud_settings(sqlite_url(tmp_path), mosquitto_mqtt(mosquitto), timing)
    async with running_cloud(settings) as cloud:
        await seed_machine(cloud.parts, "m8", online=True, callback_qr_id="qr-m8")
        edge = FakeEdge("127.0.0.1", mosquitto.port, "m8", machine_password("m8"))
        async with contextlib.AsyncExitStack() as stack:
            if answers:
                await stack.enter_async_context(edge.online())
            response = await post_webhook(cloud, check_in("qr-m8"))
        vends = await vends_of(cloud.parts, "m8")

    assert response.status_code == 200  # Vipps is told "received" either way
    assert (len(vends), len(cloud.sim.payments._payments)) == (payments, payments)
    assert edge.pongs == payments

"""The customer's status page in a real browser: headless Chromium follows a purchase live.

Everything is real except the phone: the cloud serves over HTTP (uvicorn on a free port), the
Vipps simulator runs in process, the machine is the vend board simulator on a pty with the real
edge agent on it, over the in-process amqtt broker. The test scans, opens the payment's
``returnUrl`` in Chromium on a phone-sized viewport, approves in the simulator and presses the
board's keypad; the page must move through its ``data-state`` values by itself (it polls), and
a screenshot of each state is kept in ``test-artifacts/status-page/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from flow_support import (
    Cloud,
    cloud_settings,
    eventually,
    machine_row,
    running_cloud,
    seed_machine,
    vends_of,
)
from flow_support import sqlite_url as cloud_db_url
from support.browser import CHROMIUM, PHONE, Browser, Page, chromium

from vendgate.boardsim import DEFAULT_SLOTS, BoardSim, VendOutcome, VmcConfig
from vendgate.broker import EmbeddedBroker
from vendgate.cloud.machines import SlotSpec
from vendgate.cloud.settings import MqttSettings
from vendgate.edge import EdgeConfig, build_agent
from vendgate.protocol import Money

pytestmark = [
    pytest.mark.browser,
    pytest.mark.pty,
    pytest.mark.skipif(CHROMIUM is None, reason="no `chromium` on PATH (apt install chromium)"),
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "status-page"
MACHINE = "m1"
PLANOGRAM = [SlotSpec(slot.item, slot.name, slot.price, 1500) for slot in DEFAULT_SLOTS]
COLA = DEFAULT_SLOTS[0]
RESERVED = max(slot.price for slot in DEFAULT_SLOTS)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LIMIT_S = 20.0

STATE = "document.querySelector('#status').dataset.state"
# Every data-state the page shows, in order, recorded in the page itself: a state that lasts
# less than one of our polls is still seen.
RECORD_STATES = """(() => {
  const main = document.querySelector('#status');
  window.seenStates = [main.dataset.state];
  new MutationObserver(() => {
    const state = main.dataset.state;
    if (window.seenStates.at(-1) !== state) window.seenStates.push(state);
  }).observe(main, {attributes: true, attributeFilter: ['data-state']});
  return true;
})()"""


@dataclass
class Shop:
    """One machine with a customer's status page open in the browser, right after the scan."""

    cloud: Cloud
    board: BoardSim
    page: Page
    reference: str

    def approve(self) -> None:
        self.cloud.sim.payments.approve(self.cloud.sim.payments.find(self.reference))

    async def expect(self, state: str, shot: str) -> Path:
        """Wait until the page shows ``state`` by itself, then photograph it."""
        await self.page.wait_until(f"{STATE} === {state!r}", LIMIT_S)
        return await self.page.screenshot(ARTIFACTS / f"{shot}.png")

    async def text(self, element_id: str) -> str:
        return str(await self.page.evaluate(f"document.getElementById({element_id!r}).innerText"))


@contextlib.asynccontextmanager
async def shop(tmp_path: Path, broker: EmbeddedBroker) -> AsyncIterator[Shop]:
    assert broker.port is not None
    listener = bound_socket()
    mqtt = MqttSettings(port=broker.port, reconnect_delay=0.2)
    settings = dataclasses.replace(
        cloud_settings(cloud_db_url(tmp_path), mqtt), public_url=url_of(listener)
    )
    async with (
        running_cloud(settings) as cloud,
        served_over_http(cloud, listener),
        BoardSim(config=VmcConfig(poll_interval_s=0.05, dispense_s=0.2)) as board,
        chromium() as browser,
    ):
        await seed_machine(cloud.parts, MACHINE, PLANOGRAM)
        async with edge_agent(board, broker, tmp_path):
            await eventually(lambda: machine_is_online(cloud), LIMIT_S, "machine online")
            yield await scanned(cloud, board, browser)


async def scanned(cloud: Cloud, board: BoardSim, browser: Browser) -> Shop:
    """The customer scans; the phone's browser opens the page Vipps will return it to."""
    response = await cloud.http.get(f"/m/{MACHINE}")
    assert response.status_code == 302, response.text
    (vend,) = await vends_of(cloud.parts, MACHINE)
    return_url = cloud.sim.payments.find(vend.id).request.return_url
    assert return_url is not None
    page = await browser.new_page(PHONE)
    await page.navigate(return_url)
    await page.evaluate(RECORD_STATES)
    return Shop(cloud, board, page, vend.id)


async def machine_is_online(cloud: Cloud) -> bool:
    return (await machine_row(cloud.parts, MACHINE)).online


# -- the pieces: HTTP server, edge agent ----------------------------------------------------


def bound_socket() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    return listener


def url_of(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return f"http://{host}:{port}"


class QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave SIGINT to pytest


@contextlib.asynccontextmanager
async def served_over_http(cloud: Cloud, listener: socket.socket) -> AsyncIterator[None]:
    """The cloud app on a real port; its lifespan is already running (``running_cloud``)."""
    server = QuietServer(uvicorn.Config(cloud.app, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            if serving.done():
                serving.result()  # raises why it could not start
            await asyncio.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        await serving


@contextlib.asynccontextmanager
async def edge_agent(board: BoardSim, broker: EmbeddedBroker, folder: Path) -> AsyncIterator[None]:
    """The real edge agent in this process, its reader on the board's pty."""
    flags: dict[str, Any] = {
        "machine_id": MACHINE,
        "mqtt_url": broker.url,
        "serial": board.device_path,
        "data_dir": str(folder / "edge"),
        "resend_interval_s": "0.5",
        "reconnect_min_s": "0.1",
        "reconnect_max_s": "0.5",
    }
    agent = build_agent(EdgeConfig.load(flags, {}))
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    try:
        async with asyncio.timeout(LIMIT_S):
            await board.wait_ready()
        yield
    finally:
        stop.set()
        async with asyncio.timeout(LIMIT_S):
            await running


async def press(board: BoardSim, selection: int) -> VendOutcome:
    async with asyncio.timeout(LIMIT_S):
        await board.wait_session()
        return await board.select(selection)


# -- checks -------------------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header; fails unless it is a non-trivial PNG."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    assert len(data) > 1024, f"{path} is only {len(data)} bytes"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def phone_sized(path: Path) -> bool:
    return png_size(path) == (PHONE.width * PHONE.scale, PHONE.height * PHONE.scale)


def in_order(seen: list[str], expected: list[str]) -> bool:
    """``seen`` is ``expected`` with, at most, ``finishing`` before the last state."""
    return seen in (expected, [*expected[:-1], "finishing", expected[-1]])


def nok(minor: int) -> str:
    return Money(minor, "NOK").format()


# -- the tests ------------------------------------------------------------------------------


async def test_the_status_page_follows_a_paid_purchase(
    tmp_path: Path, amqtt_broker: EmbeddedBroker
) -> None:
    async with shop(tmp_path, amqtt_broker) as customer:
        shots = [await customer.expect("waiting", "paid-1-waiting")]
        waiting_detail = await customer.text("detail")
        customer.approve()
        shots.append(await customer.expect("choose", "paid-2-choose"))
        choose_detail = await customer.text("detail")
        outcome = await press(customer.board, COLA.number)
        shots.append(await customer.expect("paid", "paid-3-paid"))
        headline, detail = await customer.text("headline"), await customer.text("detail")
        final = await customer.page.evaluate("document.querySelector('#status').dataset.final")
        seen = await customer.page.evaluate("window.seenStates")

    assert outcome.result == "success"
    assert in_order(seen, ["waiting", "choose", "paid"]), seen
    assert nok(RESERVED) in waiting_detail
    assert nok(RESERVED) in choose_detail
    assert headline == "Enjoy!"
    assert detail == (
        f"You paid {nok(COLA.price)} and {nok(RESERVED - COLA.price)} was released. ({COLA.name})"
    )
    assert final == "true"
    assert all(phone_sized(shot) for shot in shots)


async def test_the_status_page_says_not_charged_when_the_motor_jams(
    tmp_path: Path, amqtt_broker: EmbeddedBroker
) -> None:
    async with shop(tmp_path, amqtt_broker) as customer:
        shots = [await customer.expect("waiting", "not-charged-1-waiting")]
        customer.approve()
        shots.append(await customer.expect("choose", "not-charged-2-choose"))
        customer.board.jam(COLA.number)
        outcome = await press(customer.board, COLA.number)
        shots.append(await customer.expect("not_charged", "not-charged-3-not-charged"))
        headline = await customer.text("headline")
        seen = await customer.page.evaluate("window.seenStates")

    assert outcome.result == "failure"
    assert in_order(seen, ["waiting", "choose", "not_charged"]), seen
    assert headline == "Nothing was dispensed: you were not charged."
    assert all(phone_sized(shot) for shot in shots)

"""From "first API key" to "first sale", as an operator and a field technician do it.

On the production-shaped tier: the repo's Mosquitto with dynamic security (the cloud drives it
through its admin login), PostgreSQL, the cloud served over real HTTP, and the machine as real
processes (``vendgate board-sim`` on a pty, ``vendgate edge``). The machine is created through
the API, claimed on the machine with ``vendgate edge claim``, and bought from through the URL
its sticker encodes, read back by a QR decoder from the sticker PNG.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import uvicorn
import zxingcpp
from flow_support import (
    Cloud,
    cloud_settings,
    eventually,
    ledger,
    machine_row,
    receipt_count,
    running_cloud,
    vends_of,
    wait_for_state,
)
from PIL import Image
from support.machine import board_process, start_edge, stop
from support.mosquitto import ADMIN_USER, CLOUD_PASSWORD, CLOUD_USER, Mosquitto

from vendgate.cloud.settings import FleetSettings, MqttSettings
from vendgate.edge import read_config_file

MACHINE = "shop-1"
# Two slots of the board simulator's own planogram; the reservation is the highest price.
SLOTS = [
    {"item": 1, "name": "Cola 0.5 l", "price": 2500, "vat_rate": 1500},
    {"item": 5, "name": "Sandwich", "price": 3500, "vat_rate": 1500},
]
COLA, RESERVED = 2500, 3500


@contextlib.asynccontextmanager
async def over_tcp(cloud: Cloud) -> AsyncIterator[str]:
    """The running app (its lifespan already run by ``running_cloud``) on a real socket too."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(cloud.app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: _started(server, serving), what="the cloud serving over TCP")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def _started(server: uvicorn.Server, serving: asyncio.Task[None]) -> bool:
    if serving.done():
        serving.result()
    return bool(server.started)


async def vendgate(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vendgate",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def decoded(png: bytes) -> str:
    [result] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(result.text)


async def refused(mosquitto: Mosquitto, username: str, password: str) -> bool:
    try:
        async with aiomqtt.Client(
            "127.0.0.1", mosquitto.port, username=username, password=password, identifier=username
        ):
            return False
    except aiomqtt.MqttError:
        return True


@pytest.mark.pty
@pytest.mark.postgres
async def test_a_machine_created_through_the_api_makes_its_first_sale(
    mosquitto: Mosquitto, fresh_postgres: str, tmp_path: Path
) -> None:
    mqtt = MqttSettings(
        host="127.0.0.1",
        port=mosquitto.port,
        username=CLOUD_USER,
        password=CLOUD_PASSWORD,
        shared_subscriptions=True,
    )
    fleet = FleetSettings(
        broker_admin_url=f"mqtt://{ADMIN_USER}:{CLOUD_PASSWORD}@127.0.0.1:{mosquitto.port}",
        machine_mqtt_url=mosquitto.url,
    )
    settings = cloud_settings(fresh_postgres, mqtt, fleet=fleet)
    async with running_cloud(settings) as cloud, over_tcp(cloud) as cloud_url:
        await first_sale(cloud, cloud_url, mosquitto, tmp_path)


async def first_sale(cloud: Cloud, cloud_url: str, mosquitto: Mosquitto, tmp_path: Path) -> None:
    # The operator: the first key (the CLI's own service), a machine, a claim code.
    key = await cloud.parts.api_keys.create("setup", ["read", "machines"])
    operator = {"Authorization": f"Bearer {key.key}"}
    body: dict[str, Any] = {"id": MACHINE, "name": "Kantina", "slots": SLOTS}
    created = await cloud.http.post("/api/v1/machines", json=body, headers=operator)
    assert created.status_code == 201, created.text
    first_password = created.json()["mqtt"]["password"]
    issued = await cloud.http.post(f"/api/v1/machines/{MACHINE}/claim-code", headers=operator)
    code = issued.json()["code"]

    # The technician, on the machine: claim, then start the agent from the file claim wrote.
    config = tmp_path / "etc" / "edge.env"
    status, out, err = await vendgate(
        "edge", "claim", "--cloud", cloud_url, "--code", code, "--config", str(config)
    )
    assert status == 0, err
    assert f"claimed machine {MACHINE}" in out
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert await refused(mosquitto, MACHINE, first_password)  # the claim issued a fresh one
    status, _, err = await vendgate(
        "edge", "claim", "--cloud", cloud_url, "--code", code, "--config", str(config)
    )
    assert status == 1
    assert "used or expired" in err

    async with board_process() as board:
        env = {
            **os.environ,
            "VENDGATE_CONFIG": str(config),
            "VENDGATE_SERIAL": board.pty,
            "VENDGATE_DATA_DIR": str(tmp_path / "edge"),
        }
        agent = await start_edge(env)
        try:
            await eventually(
                lambda: _online(cloud), what=f"{MACHINE} online with its claimed login"
            )
            await board.wait_status("reader=ready")
            await buy_through_the_sticker(cloud, operator, board)
            await revoke(cloud, operator, mosquitto, config)
        finally:
            await stop(agent)


async def revoke(
    cloud: Cloud, operator: dict[str, str], mosquitto: Mosquitto, config: Path
) -> None:
    """Revoked through the API: the broker drops the running machine and refuses its login;
    the cloud's own login is untouched."""
    password = read_config_file(config)["VENDGATE_MQTT_PASSWORD"]
    response = await cloud.http.delete(f"/api/v1/machines/{MACHINE}/credentials", headers=operator)
    assert response.status_code == 204, response.text

    async def offline() -> bool:
        return not await _online(cloud)

    await eventually(offline, what=f"{MACHINE} offline for the cloud")
    assert await refused(mosquitto, MACHINE, password)
    assert cloud.parts.link is not None
    assert cloud.parts.link.connected.is_set()


async def _online(cloud: Cloud) -> bool:
    return (await machine_row(cloud.parts, MACHINE)).online


async def buy_through_the_sticker(cloud: Cloud, operator: dict[str, str], board: Any) -> None:
    sticker = await cloud.http.get(f"/api/v1/machines/{MACHINE}/sticker", headers=operator)
    assert sticker.status_code == 200, sticker.text
    url = decoded(sticker.content)
    # The phone's camera opens the sticker's URL (the QR API's), which leads to our scan page.
    hop = await cloud.sim_http.get(url)
    assert hop.status_code in (302, 303, 307), hop.text
    scan_url = hop.headers["location"]
    assert scan_url == f"{cloud.parts.settings.public_url}/m/{MACHINE}"
    scanned = await cloud.http.get(scan_url)
    assert scanned.status_code == 302, scanned.text
    (vend,) = await vends_of(cloud.parts, MACHINE)
    cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))

    await board.buy(1)
    await board.wait_status("last_vend=slot:1,item:1,success", "session=none")
    settled = await wait_for_state(cloud.parts, vend.id, "closed")
    payment = ledger(cloud.sim, vend.id)
    assert settled.outcome == "paid"
    assert (payment.authorized, payment.captured, payment.cancelled) == (
        RESERVED,
        COLA,
        RESERVED - COLA,
    )
    assert receipt_count(cloud.sim, vend.id) == 1

"""The operator's refusals hold on the embedded amqtt tier too.

The in-process ``EmbeddedBroker`` checks the cloud's own login against its password and every
other login with the running cloud's own check (``Fleet.authenticate``, its database); the
cloud drives it through ``EmbeddedAccounts`` (``create_app(..., broker_accounts=...)``), which
drops connections on a rotation, a revoke and a delete. Machines are created through the
operator API and log in with the password it issued, as ``vendgate demo`` does. Throughout,
the cloud must stay connected (``healthz``, its one connect) and keep recording a legitimate
machine's status.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from flow_support import (
    CHOCOLATE,
    COLA,
    MAX_PRICE,
    Cloud,
    EdgeScript,
    FakeEdge,
    cloud_settings,
    eventually,
    ledger,
    machine_row,
    receipt_count,
    running_cloud,
    scan_and_approve,
    sqlite_url,
    wait_for_state,
)
from sqlmodel import col, select

from vendgate.broker import CLOUD_USER, EmbeddedAccounts, EmbeddedBroker
from vendgate.cloud.db import ProcessedMessage, transaction
from vendgate.cloud.settings import MqttSettings
from vendgate.protocol.mqtt import Event, Hello, Status, StatusState, TopicTree

pytestmark = pytest.mark.amqtt

TREE = TopicTree()
SLOTS = [
    {"item": slot.item, "name": slot.name, "price": slot.price, "vat_rate": slot.vat_rate}
    for slot in (COLA, CHOCOLATE)
]
NOT_AUTHORIZED = "not authori"
BAD_LOGIN = "bad user name or password"


@dataclass
class Shop:
    """The running cloud, its broker and an operator's key."""

    cloud: Cloud
    broker: EmbeddedBroker
    operator: dict[str, str]

    @property
    def port(self) -> int:
        assert self.broker.port is not None
        return self.broker.port

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.cloud.http.request(
            method, f"/api/v1/machines{path}", headers=self.operator, **kwargs
        )
        assert response.is_success, response.text
        return response.json() if response.content else None

    async def create(self, machine_id: str) -> str:
        """A machine through the API; its broker password (shown this once)."""
        created = await self.api("POST", "", json={"id": machine_id, "name": machine_id})
        login = created["mqtt"]
        assert login["username"] == machine_id
        assert login["mqtt_url"] == f"mqtt://127.0.0.1:{self.port}"
        return str(login["password"])

    async def rotate(self, machine_id: str) -> str:
        return str((await self.api("POST", f"/{machine_id}/credentials"))["password"])

    async def cloud_connected(self) -> bool:
        health = await self.cloud.http.get("/healthz")
        return bool(health.json()["mqtt"])


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    cloud_password = secrets.token_urlsafe(32)
    broker = EmbeddedBroker(cloud_logins={CLOUD_USER: cloud_password})
    async with broker:
        assert broker.port is not None
        mqtt = MqttSettings(
            host="127.0.0.1",
            port=broker.port,
            username=CLOUD_USER,
            password=cloud_password,
            reconnect_delay=0.2,
        )
        settings = cloud_settings(sqlite_url(tmp_path), mqtt)
        async with running_cloud(settings, broker_accounts=EmbeddedAccounts(broker)) as cloud:
            broker.authenticate = cloud.parts.fleet.authenticate
            key = await cloud.parts.api_keys.create("setup", ["read", "machines"])
            running = Shop(cloud, broker, {"Authorization": f"Bearer {key.key}"})
            await eventually(running.cloud_connected, what="the cloud logged in to the broker")
            yield running


def machine(
    shop: Shop, machine_id: str | None, password: str | None, **options: Any
) -> aiomqtt.Client:
    """A client as ``machine_id`` (client id = username, as brokers require)."""
    return aiomqtt.Client(
        "127.0.0.1",
        shop.port,
        username=machine_id,
        password=password,
        identifier=machine_id or "",
        **options,
    )


async def refusal(shop: Shop, machine_id: str | None, password: str | None) -> str:
    """Why the broker refused this login (its CONNACK, lower case), "" if it let it in."""
    try:
        async with machine(shop, machine_id, password):
            return ""
    except aiomqtt.MqttCodeError as exc:
        return str(exc).lower()


async def next_message(client: aiomqtt.Client, limit: float = 10.0) -> tuple[str, bytes]:
    async with asyncio.timeout(limit):
        message = await anext(aiter(client.messages))
    return str(message.topic), bytes(message.payload)  # type: ignore[arg-type]


async def dropped(client: aiomqtt.Client, limit: float = 30.0) -> None:
    """The broker closed ``client``'s connection. What it still delivers before (the cloud's
    retained presence, which may arrive late on a loaded machine) is read past."""
    with pytest.raises(aiomqtt.MqttError, match="Disconnected"):
        await asyncio.wait_for(_read_to_the_end(client), limit)


async def _read_to_the_end(client: aiomqtt.Client) -> None:
    async for _ in client.messages:
        pass


def status(boot_id: str) -> bytes:
    now = datetime.now(UTC)
    return Status.create(now=now, state=StatusState.ONLINE, boot_id=boot_id, versions={}).encode()


def hello(outbox: int) -> Event:
    return Hello.create(now=datetime.now(UTC), seq=1, boot_id="boot", open_vends=[], outbox=outbox)


async def boot_is(shop: Shop, machine_id: str, boot_id: str) -> bool:
    """The cloud recorded a status of ``machine_id`` from this boot."""
    return (await machine_row(shop.cloud.parts, machine_id)).boot_id == boot_id


async def cloud_keeps_working(shop: Shop, machine_id: str, password: str) -> None:
    """Still connected since the start, and a legitimate machine's status is recorded."""
    assert await shop.cloud_connected()
    link = shop.cloud.parts.link
    assert link is not None
    assert link.connects == 1
    boot_id = f"boot-{secrets.token_hex(4)}"
    async with machine(shop, machine_id, password) as client:
        await client.publish(str(TREE.status(machine_id)), status(boot_id), qos=1)

    await eventually(lambda: boot_is(shop, machine_id, boot_id), what=f"{machine_id}'s status")


# -- logins ---------------------------------------------------------------------------------------


async def test_a_machine_created_through_the_api_logs_in_with_its_issued_password(
    shop: Shop,
) -> None:
    password = await shop.create("a1")

    assert await refusal(shop, "a1", password) == ""
    assert NOT_AUTHORIZED in await refusal(shop, None, None)  # anonymous
    assert BAD_LOGIN in await refusal(shop, "a1", "wrong")
    assert BAD_LOGIN in await refusal(shop, "a1", "")
    assert BAD_LOGIN in await refusal(shop, "nobody", password)  # no such machine
    assert BAD_LOGIN in await refusal(shop, CLOUD_USER, password)  # the cloud's name is no machine
    await cloud_keeps_working(shop, "a1", password)


async def test_a_machine_cannot_subscribe_to_another_machines_commands(shop: Shop) -> None:
    password_a, password_b = await shop.create("a1"), await shop.create("b1")
    async with machine(shop, "b1", password_b) as b1:
        # amqtt hands a connecting client the retained messages of everyone's subscriptions
        # (docs/demo.md, "Known quirk"): b1's retained status must still not reach a1.
        await b1.publish(str(TREE.status("b1")), status("b1-boot"), qos=1, retain=True)
        await b1.subscribe(str(TREE.edge_filter("b1")), qos=1)
        await eventually(lambda: boot_is(shop, "b1", "b1-boot"), what="b1's status recorded")
        async with machine(shop, "a1", password_a) as a1:
            for stranger in ("vend/v1/b1/cmd/#", "vend/v1/+/cmd/#", "vend/v1/#", "#"):
                codes = await a1.subscribe(stranger, qos=1)
                assert all(getattr(code, "is_failure", False) for code in codes), stranger
            await a1.subscribe(str(TREE.edge_filter("a1")), qos=1)

            await shop.api("PUT", "/b1/planogram", json=SLOTS)
            assert (await next_message(b1))[0] == "vend/v1/b1/cmd/config"  # one to see
            await shop.api("PUT", "/a1/planogram", json=SLOTS)
            # a1's next message is its own: nothing of b1's, sent before it, reached a1.
            assert (await next_message(a1))[0] == "vend/v1/a1/cmd/config"
    await cloud_keeps_working(shop, "b1", password_b)


async def test_a_machine_cannot_publish_another_machines_events_or_status(shop: Shop) -> None:
    password_a = await shop.create("a1")
    await shop.create("b1")
    forged, own = hello(outbox=7), hello(outbox=3)
    async with machine(shop, "a1", password_a) as a1:
        await a1.publish(str(TREE.status("b1")), status("forged-boot"), qos=1, retain=True)
        await a1.publish(str(TREE.event("b1", "hello")), forged.encode(), qos=1)
        # Then a1's own, on the same connection: once the cloud has these, it had the forged.
        await a1.publish(str(TREE.status("a1")), status("a1-boot"), qos=1)
        await a1.publish(str(TREE.event("a1", "hello")), own.encode(), qos=1)

        async def own_recorded() -> bool:
            row = await machine_row(shop.cloud.parts, "a1")
            return row.boot_id == "a1-boot" and row.outbox_depth == 3

        await eventually(own_recorded, what="a1's own status and hello recorded")

    b1 = await machine_row(shop.cloud.parts, "b1")
    assert (b1.online, b1.boot_id, b1.last_seen_at, b1.outbox_depth) == (False, None, None, None)
    query = select(ProcessedMessage.key).where(col(ProcessedMessage.key).contains(forged.id))
    async with transaction(shop.cloud.parts.sessions) as db:
        assert (await db.exec(query)).all() == []


# -- rotation, revocation, deletion -------------------------------------------------------------


async def test_after_a_rotation_the_old_password_is_refused_and_the_machine_dropped(
    shop: Shop,
) -> None:
    old = await shop.create("a1")
    async with machine(shop, "a1", old) as a1:
        await a1.subscribe(str(TREE.edge_filter("a1")), qos=1)
        new = await shop.rotate("a1")
        await dropped(a1)

    assert BAD_LOGIN in await refusal(shop, "a1", old)
    assert await refusal(shop, "a1", new) == ""
    await cloud_keeps_working(shop, "a1", new)


async def test_after_a_revoke_the_machine_is_disconnected_and_refused(shop: Shop) -> None:
    password_a, password_b = await shop.create("a1"), await shop.create("b1")
    async with machine(shop, "a1", password_a) as a1:
        await a1.subscribe(str(TREE.edge_filter("a1")), qos=1)
        await shop.api("DELETE", "/a1/credentials")
        await dropped(a1)

    assert BAD_LOGIN in await refusal(shop, "a1", password_a)
    await cloud_keeps_working(shop, "b1", password_b)
    restored = await shop.rotate("a1")  # a revoke lasts until the next rotation
    assert await refusal(shop, "a1", restored) == ""


async def test_after_a_delete_the_machine_is_disconnected_and_refused(shop: Shop) -> None:
    password_a, password_b = await shop.create("a1"), await shop.create("b1")
    async with machine(shop, "a1", password_a) as a1:
        await a1.subscribe(str(TREE.edge_filter("a1")), qos=1)
        await shop.api("DELETE", "/a1")
        await dropped(a1)

    assert BAD_LOGIN in await refusal(shop, "a1", password_a)
    await cloud_keeps_working(shop, "b1", password_b)


# -- a purchase ---------------------------------------------------------------------------------


async def test_a_purchase_end_to_end_with_the_issued_login(shop: Shop) -> None:
    created = await shop.api("POST", "", json={"id": "shop-1", "name": "Kantina", "slots": SLOTS})
    login = created["mqtt"]
    edge = FakeEdge(
        "127.0.0.1",
        shop.port,
        login["username"],
        password=login["password"],
        script=EdgeScript.buys(COLA.price),
    )
    async with edge.online():

        async def online() -> bool:
            return (await machine_row(shop.cloud.parts, "shop-1")).online

        await eventually(online, what="shop-1 online with its issued login")
        vend = await scan_and_approve(shop.cloud, "shop-1")
        settled = await wait_for_state(shop.cloud.parts, vend.id, "closed")

    payment = ledger(shop.cloud.sim, vend.id)
    assert (payment.authorized, payment.captured, payment.cancelled) == (
        MAX_PRICE,
        COLA.price,
        MAX_PRICE - COLA.price,
    )
    assert settled.outcome == "paid"
    assert receipt_count(shop.cloud.sim, vend.id) == 1
    assert all(event.id in edge.acked for event in edge.sent)

"""The operator API: keys and scopes, machines, planograms, broker logins, claim codes.

Every operator route is checked for its success, 401 without a key, 403 with a key lacking its
scope, and bad input (422 naming the field), on SQLite and on PostgreSQL. The broker side is
an in-memory ``BrokerAccounts`` here; the real brokers are in the broker tests.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import zxingcpp
from flow_support import Cloud, cloud_settings, running_cloud
from PIL import Image
from sqlmodel import col, select

from vendgate.cloud.db import OutboxCommand, transaction
from vendgate.cloud.operators import ApiKeys, Scope
from vendgate.protocol.mqtt import Config

MACHINE = {
    "id": "lobby-1",
    "name": "Lobby",
    "location": "Storgata 1, ground floor",
    "slots": [
        {"item": 11, "name": "Cola", "price": 2500, "vat_rate": 1500},
        {"item": 12, "name": "Vann", "price": 2000, "vat_rate": 1500, "stock": 7},
        {"item": 13, "name": "Sjokolade", "price": 3500, "enabled": False},
    ],
}


class RecordingAccounts:
    """The broker as the cloud drives it, in memory: what each machine may log in with."""

    def __init__(self) -> None:
        self.passwords: dict[str, str] = {}
        self.disabled: set[str] = set()
        self.removed: list[str] = []

    async def add(self, machine_id: str, password: str) -> None:
        self.passwords[machine_id] = password

    async def set_password(self, machine_id: str, password: str) -> None:
        self.passwords[machine_id] = password

    async def disable(self, machine_id: str) -> None:
        self.disabled.add(machine_id)

    async def enable(self, machine_id: str) -> None:
        self.disabled.discard(machine_id)

    async def remove(self, machine_id: str) -> None:
        self.passwords.pop(machine_id, None)
        self.removed.append(machine_id)


@pytest.fixture
def accounts() -> RecordingAccounts:
    return RecordingAccounts()


@pytest.fixture
async def cloud(database_url: str, accounts: RecordingAccounts) -> AsyncIterator[Cloud]:
    settings = cloud_settings(database_url, None)
    async with running_cloud(settings, broker_accounts=accounts) as running:
        yield running


async def key(cloud: Cloud, *scopes: Scope) -> dict[str, str]:
    keys: ApiKeys = cloud.app.state.api_keys
    created = await keys.create("test", [s.value for s in scopes])
    return {"Authorization": f"Bearer {created.key}"}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def create_machine(cloud: Cloud, body: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = await key(cloud, Scope.MACHINES)
    response = await cloud.http.post("/api/v1/machines", json=body or MACHINE, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# -- authentication and scopes, for every operator route ----------------------------------

ROUTES: list[tuple[str, str, Scope, Any]] = [
    ("POST", "/api/v1/keys", Scope.ADMIN, {"name": "ci", "scopes": ["read"]}),
    ("GET", "/api/v1/keys", Scope.ADMIN, None),
    ("DELETE", "/api/v1/keys/nope", Scope.ADMIN, None),
    ("POST", "/api/v1/machines", Scope.MACHINES, {**MACHINE, "id": "other"}),
    ("GET", "/api/v1/machines", Scope.READ, None),
    ("GET", "/api/v1/machines/lobby-1", Scope.READ, None),
    ("PATCH", "/api/v1/machines/lobby-1", Scope.MACHINES, {"name": "Lobby east"}),
    ("DELETE", "/api/v1/machines/lobby-1", Scope.MACHINES, None),
    ("PUT", "/api/v1/machines/lobby-1/planogram", Scope.MACHINES, MACHINE["slots"]),
    ("POST", "/api/v1/machines/lobby-1/credentials", Scope.MACHINES, None),
    ("DELETE", "/api/v1/machines/lobby-1/credentials", Scope.MACHINES, None),
    ("POST", "/api/v1/machines/lobby-1/claim-code", Scope.MACHINES, None),
    ("GET", "/api/v1/machines/lobby-1/sticker", Scope.READ, None),
    ("GET", "/api/v1/stickers.pdf?machine=lobby-1", Scope.READ, None),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _, _ in ROUTES]


@pytest.mark.parametrize(("method", "path", "scope", "body"), ROUTES, ids=ROUTE_IDS)
async def test_a_route_without_a_key_is_401(
    cloud: Cloud, method: str, path: str, scope: Scope, body: Any
) -> None:
    response = await cloud.http.request(method, path, json=body)
    assert "Bearer" in response.headers["www-authenticate"]
    assert "API key" in problem(response, 401)["detail"]
    wrong = {"Authorization": "Bearer vgk_0123456789abcdef_not-the-secret"}
    response = await cloud.http.request(method, path, json=body, headers=wrong)
    assert "unknown or revoked" in problem(response, 401)["detail"]


@pytest.mark.parametrize(("method", "path", "scope", "body"), ROUTES, ids=ROUTE_IDS)
async def test_a_key_without_the_routes_scope_is_403(
    cloud: Cloud, method: str, path: str, scope: Scope, body: Any
) -> None:
    await create_machine(cloud)
    others = [s for s in Scope if s is not scope]
    response = await cloud.http.request(method, path, json=body, headers=await key(cloud, *others))
    assert scope.value in problem(response, 403)["detail"]
    response = await cloud.http.request(method, path, json=body, headers=await key(cloud, scope))
    assert response.status_code not in (401, 403), response.text  # (404: "nope" is no key)


async def test_customer_pages_and_health_stay_public(cloud: Cloud) -> None:
    assert (await cloud.http.get("/healthz")).status_code == 200
    assert (await cloud.http.get("/m/nobody")).status_code == 404  # no 401: not an operator route


# -- keys ----------------------------------------------------------------------------------


async def test_a_key_is_shown_once_listed_without_its_secret_and_revoked_at_once(
    cloud: Cloud,
) -> None:
    admin = await key(cloud, Scope.ADMIN)
    response = await cloud.http.post(
        "/api/v1/keys", json={"name": "dashboard", "scopes": ["read", "money"]}, headers=admin
    )
    assert response.status_code == 201
    created = response.json()
    assert created["key"].startswith(f"vgk_{created['id']}_")
    assert created["scopes"] == ["money", "read"]
    new = {"Authorization": f"Bearer {created['key']}"}
    assert (await cloud.http.get("/api/v1/machines", headers=new)).status_code == 200

    listed = (await cloud.http.get("/api/v1/keys", headers=admin)).json()
    assert created["id"] in {k["id"] for k in listed}
    assert all("key" not in k for k in listed)
    assert created["key"].split("_")[-1] not in str(listed)

    response = await cloud.http.delete(f"/api/v1/keys/{created['id']}", headers=admin)
    assert response.json()["revoked_at"] is not None
    problem(await cloud.http.get("/api/v1/machines", headers=new), 401)
    again = await cloud.http.delete(f"/api/v1/keys/{created['id']}", headers=admin)
    assert again.json()["revoked_at"] == response.json()["revoked_at"]  # revoking twice: no change


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["superuser"]}, "scopes"),
        ({"name": "", "scopes": ["read"]}, "name"),
        ({"name": "x" * 101, "scopes": ["read"]}, "name"),
        ({"name": "x"}, "scopes"),
        ({"name": 5, "scopes": ["read"]}, "name"),
        ({"name": "x", "scopes": ["read"], "admin": True}, "admin"),
    ],
)
async def test_a_bad_key_request_is_422_naming_the_field(
    cloud: Cloud, body: dict[str, Any], field: str
) -> None:
    response = await cloud.http.post(
        "/api/v1/keys", json=body, headers=await key(cloud, Scope.ADMIN)
    )
    assert field in problem(response, 422)["field"]


async def test_an_unknown_key_id_is_404(cloud: Cloud) -> None:
    response = await cloud.http.delete("/api/v1/keys/nope", headers=await key(cloud, Scope.ADMIN))
    problem(response, 404)


# -- machines ------------------------------------------------------------------------------


async def test_a_created_machine_has_its_planogram_login_and_live_state(cloud: Cloud) -> None:
    created = await create_machine(cloud)
    machine, login = created["machine"], created["mqtt"]
    assert machine["id"] == "lobby-1"
    assert machine["location"] == MACHINE["location"]
    assert machine["reservation"] == 2500  # the highest *enabled* price
    assert [s["item"] for s in machine["slots"]] == [11, 12, 13]
    assert machine["slots"][1]["stock"] == 7
    assert machine["slots"][2]["enabled"] is False
    assert machine["online"] is False
    assert machine["open_session"] is None
    assert machine["scan_url"].endswith("/m/lobby-1")
    assert login["username"] == "lobby-1"
    assert len(login["password"]) >= 40
    assert await cloud.app.state.fleet.authenticate("lobby-1", login["password"])
    assert not await cloud.app.state.fleet.authenticate("lobby-1", "guess")

    read = await key(cloud, Scope.READ)
    shown = (await cloud.http.get("/api/v1/machines/lobby-1", headers=read)).json()
    assert shown["name"] == "Lobby"
    assert "password" not in str(shown)


async def test_creating_a_machine_twice_is_409(cloud: Cloud) -> None:
    await create_machine(cloud)
    response = await cloud.http.post(
        "/api/v1/machines", json=MACHINE, headers=await key(cloud, Scope.MACHINES)
    )
    problem(response, 409)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "has space"}, "id"),
        ({"name": "   "}, "name"),
        ({"currency": "kr"}, "currency"),
        ({"slots": [{"item": 1, "name": "A", "price": -5}]}, "slots[0].price"),
        ({"slots": [{"item": 1, "name": "A", "price": 10_000_000}]}, "slots[0].price"),
        (
            {"slots": [{"item": 1, "name": "A", "price": 5, "vat_rate": 10_001}]},
            "slots[0].vat_rate",
        ),
        (
            {"slots": [{"item": 1, "name": "A", "price": 5}, {"item": 1, "name": "B", "price": 6}]},
            "slots[1].item",
        ),
        ({"slots": [{"item": 1, "name": "A", "price": "five"}]}, "slots[0].price"),
        ({"slots": [{"item": 1, "name": "A", "price": 5, "colour": "red"}]}, "colour"),
    ],
)
async def test_a_bad_machine_is_422_naming_the_field(
    cloud: Cloud, change: dict[str, Any], field: str
) -> None:
    body = {**MACHINE, **change}
    response = await cloud.http.post(
        "/api/v1/machines", json=body, headers=await key(cloud, Scope.MACHINES)
    )
    assert field in problem(response, 422)["field"]
    read = await key(cloud, Scope.READ)
    assert (await cloud.http.get("/api/v1/machines", headers=read)).json()["items"] == []


async def test_the_fleet_lists_by_page_filter_and_search(cloud: Cloud) -> None:
    for number in range(5):
        await create_machine(cloud, {**MACHINE, "id": f"m{number}", "name": f"Kiosk {number}"})
    read, write = await key(cloud, Scope.READ), await key(cloud, Scope.MACHINES)
    await cloud.http.patch("/api/v1/machines/m3", json={"disabled": True}, headers=write)

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await cloud.http.get("/api/v1/machines", params=params, headers=read)).json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # A machine added between pages shows up later, never twice, never shifting a page.
        if len(seen) == 2:
            await create_machine(cloud, {**MACHINE, "id": "m9", "name": "Late"})
    assert seen == ["m0", "m1", "m2", "m3", "m4", "m9"]

    disabled = await cloud.http.get("/api/v1/machines", params={"status": "disabled"}, headers=read)
    assert [m["id"] for m in disabled.json()["items"]] == ["m3"]
    found = await cloud.http.get("/api/v1/machines", params={"q": "kIOSK 4"}, headers=read)
    assert [m["id"] for m in found.json()["items"]] == ["m4"]
    offline = await cloud.http.get("/api/v1/machines", params={"status": "offline"}, headers=read)
    assert len(offline.json()["items"]) == 6


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "asleep"}, "status"), ({"limit": 0}, "limit"), ({"cursor": "%%%"}, "cursor")],
)
async def test_a_bad_list_query_is_422_naming_it(
    cloud: Cloud, params: dict[str, Any], field: str
) -> None:
    response = await cloud.http.get(
        "/api/v1/machines", params=params, headers=await key(cloud, Scope.READ)
    )
    assert field in problem(response, 422)["field"]


async def test_an_update_changes_only_what_it_names(cloud: Cloud) -> None:
    await create_machine(cloud)
    write = await key(cloud, Scope.MACHINES)
    response = await cloud.http.patch(
        "/api/v1/machines/lobby-1", json={"location": "Basement"}, headers=write
    )
    assert response.json()["location"] == "Basement"
    assert response.json()["name"] == "Lobby"
    bad = await cloud.http.patch("/api/v1/machines/lobby-1", json={"name": ""}, headers=write)
    assert problem(bad, 422)["field"] == "name"
    missing = await cloud.http.patch("/api/v1/machines/ghost", json={"name": "x"}, headers=write)
    problem(missing, 404)


async def test_a_deleted_machine_is_gone_and_its_login_refused(
    cloud: Cloud, accounts: RecordingAccounts
) -> None:
    login = (await create_machine(cloud))["mqtt"]
    write = await key(cloud, Scope.MACHINES)
    assert (await cloud.http.delete("/api/v1/machines/lobby-1", headers=write)).status_code == 204
    read = await key(cloud, Scope.READ)
    problem(await cloud.http.get("/api/v1/machines/lobby-1", headers=read), 404)
    assert not await cloud.app.state.fleet.authenticate("lobby-1", login["password"])
    assert accounts.removed == ["lobby-1"]
    # The id is never reused: its sales history keeps pointing at it.
    problem(await cloud.http.post("/api/v1/machines", json=MACHINE, headers=write), 409)


async def test_the_planogram_is_replaced_and_sent_to_the_machine(cloud: Cloud) -> None:
    await create_machine(cloud)
    slots = [{"item": 21, "name": "Kaffe", "price": 3000, "vat_rate": 1500}]
    response = await cloud.http.put(
        "/api/v1/machines/lobby-1/planogram", json=slots, headers=await key(cloud, Scope.MACHINES)
    )
    assert response.status_code == 200, response.text
    assert response.json()["reservation"] == 3000
    async with transaction(cloud.parts.sessions) as db:
        query = select(OutboxCommand).where(OutboxCommand.machine_id == "lobby-1")
        rows = (await db.exec(query.order_by(col(OutboxCommand.created_at)))).all()
    configs = [Config.decode(row.payload) for row in rows if row.topic.endswith("/cmd/config")]
    assert configs[-1].settings["planogram"] == [{"item": 21, "price": 3000}]


async def test_a_bad_planogram_is_422_and_changes_nothing(cloud: Cloud) -> None:
    await create_machine(cloud)
    write = await key(cloud, Scope.MACHINES)
    bad = [{"item": 21, "name": "Kaffe", "price": 3000}, {"item": 22, "name": "", "price": 1}]
    response = await cloud.http.put("/api/v1/machines/lobby-1/planogram", json=bad, headers=write)
    assert problem(response, 422)["field"] == "slots[1].name"
    read = await key(cloud, Scope.READ)
    shown = (await cloud.http.get("/api/v1/machines/lobby-1", headers=read)).json()
    assert [s["item"] for s in shown["slots"]] == [11, 12, 13]


# -- broker logins and claim codes ---------------------------------------------------------


async def test_rotation_issues_a_new_password_and_refuses_the_old(
    cloud: Cloud, accounts: RecordingAccounts
) -> None:
    old = (await create_machine(cloud))["mqtt"]["password"]
    write = await key(cloud, Scope.MACHINES)
    response = await cloud.http.post("/api/v1/machines/lobby-1/credentials", headers=write)
    new = response.json()["password"]
    fleet = cloud.app.state.fleet
    assert new != old
    assert await fleet.authenticate("lobby-1", new)
    assert not await fleet.authenticate("lobby-1", old)
    assert accounts.passwords["lobby-1"] == new


async def test_revocation_refuses_the_machine_until_rotated(
    cloud: Cloud, accounts: RecordingAccounts
) -> None:
    password = (await create_machine(cloud))["mqtt"]["password"]
    write = await key(cloud, Scope.MACHINES)
    response = await cloud.http.delete("/api/v1/machines/lobby-1/credentials", headers=write)
    assert response.status_code == 204
    fleet = cloud.app.state.fleet
    assert not await fleet.authenticate("lobby-1", password)
    assert "lobby-1" in accounts.disabled
    new = (await cloud.http.post("/api/v1/machines/lobby-1/credentials", headers=write)).json()
    assert await fleet.authenticate("lobby-1", new["password"])
    assert "lobby-1" not in accounts.disabled


async def test_a_claim_code_gives_a_login_once(cloud: Cloud) -> None:
    await create_machine(cloud)
    write = await key(cloud, Scope.MACHINES)
    issued = (await cloud.http.post("/api/v1/machines/lobby-1/claim-code", headers=write)).json()
    typed = issued["code"].lower().replace("-", " ")  # what a technician might type
    response = await cloud.http.post("/api/v1/claims", json={"code": typed})
    assert response.status_code == 200, response.text
    login = response.json()
    assert login["username"] == "lobby-1"
    assert await cloud.app.state.fleet.authenticate("lobby-1", login["password"])
    again = await cloud.http.post("/api/v1/claims", json={"code": issued["code"]})
    assert "used or expired" in problem(again, 404)["detail"]
    problem(await cloud.http.post("/api/v1/claims", json={}), 422)


# -- stickers ------------------------------------------------------------------------------


def decoded(png: bytes) -> list[str]:
    image = Image.open(io.BytesIO(png))
    return [result.text for result in zxingcpp.read_barcodes(image)]


async def test_the_sticker_encodes_the_url_the_qr_api_gave_and_it_leads_to_the_scan(
    cloud: Cloud,
) -> None:
    await create_machine(cloud)
    read = await key(cloud, Scope.READ)
    response = await cloud.http.get("/api/v1/machines/lobby-1/sticker", headers=read)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    [url] = decoded(response.content)
    qr = await cloud.parts.vipps.qr.get_redirect("lobby-1", image_format="text/targetUrl")
    assert url == qr.url
    assert qr.redirect_url == "http://cloud.test/m/lobby-1"
    # A camera follows the sticker's URL to the machine's scan page.
    scanned = await cloud.sim_http.get(url)
    assert scanned.status_code in (302, 303, 307)
    assert scanned.headers["location"] == "http://cloud.test/m/lobby-1"

    again = await cloud.http.get("/api/v1/machines/lobby-1/sticker", headers=read)
    assert decoded(again.content) == [url]  # registered once, the same QR every time


async def test_the_sticker_as_svg_and_a_print_sheet(cloud: Cloud) -> None:
    for number in range(3):
        await create_machine(cloud, {**MACHINE, "id": f"k{number}", "name": f"Kiosk {number}"})
    read = await key(cloud, Scope.READ)
    svg = await cloud.http.get("/api/v1/machines/k1/sticker?format=svg", headers=read)
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "Kiosk 1" in svg.text
    assert "k1" in svg.text
    params = [("machine", "k0"), ("machine", "k1"), ("machine", "k2")]
    pdf = await cloud.http.get("/api/v1/stickers.pdf", params=params, headers=read)
    assert pdf.status_code == 200, pdf.text
    assert pdf.content.startswith(b"%PDF")
    missing = await cloud.http.get("/api/v1/stickers.pdf?machine=ghost", headers=read)
    problem(missing, 404)
    bad = await cloud.http.get("/api/v1/machines/k1/sticker?format=gif", headers=read)
    assert problem(bad, 422)["field"] == "format"

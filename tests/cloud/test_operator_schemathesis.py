"""schemathesis against the operator API: every answer is one its OpenAPI document promises.

Each /api/v1 operation gets 25 requests generated from the document the running app serves
(derandomized, so CI sees the same ones each run), sent in process through the app's httpx
client with a key holding every scope. Half the time a generated id is swapped for one that
exists (a seeded machine, a spare key, a fresh claim code), so the successes are reached too.
Every answer must be no 5xx, a documented status, a documented content type, and a body that
fits its schema. Without a key, every route but the public claim answers 401 problem+json.

schemathesis' own runner would call the app from its own event loop; this test draws its
``Case`` objects with hypothesis (``operation.as_strategy()``) under pytest-asyncio instead,
and sends them itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from flow_support import Cloud, cloud_settings, running_cloud, sqlite_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from vendgate.cloud.app import create_app
from vendgate.cloud.machines import MachineBody, SlotBody
from vendgate.cloud.operators import PROBLEM_JSON, ApiKeys, Scope

CLAIMS = ("POST", "/api/v1/claims")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Bounded and repeatable: the same examples every run, no shrinking time limit per example.
BOUNDED = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    # One app per operation serves all its examples (starting one per example is the slow
    # part); generation may be slow for the nested machine bodies.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def operator_operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every /api/v1 operation, from the document an unstarted app makes."""
    app = create_app(cloud_settings(sqlite_url("/nonexistent"), None))
    paths: dict[str, dict[str, Any]] = app.openapi_schema.to_schema()["paths"]
    return [
        (method.upper(), path)
        for path, item in paths.items()
        if path.startswith("/api/v1/")
        for method in item
        if method != "parameters"
    ]


OPERATIONS = operator_operations()
AUTHENTICATED = [operation for operation in OPERATIONS if operation != CLAIMS]


@dataclass
class Api:
    cloud: Cloud
    schema: schemathesis.BaseSchema
    headers: dict[str, str]  # a key with every scope
    machine_id: str  # seeded, with a planogram
    spare_key_id: str  # a key the tests may revoke

    async def send(self, case: Case, headers: dict[str, str]) -> httpx.Response:
        """The case as schemathesis would send it, through the app's in-process client."""
        sent = case.as_transport_kwargs(base_url=str(self.cloud.http.base_url), headers=headers)
        body = {k: sent[k] for k in ("json", "data") if k in sent}
        if "data" in body:
            body = {"content": body["data"]}
        return await self.cloud.http.request(
            sent["method"],
            sent["url"],
            headers=sent["headers"],
            params=sent.get("params"),
            cookies=sent.get("cookies") or None,
            **body,
        )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_cloud(cloud_settings(sqlite_url(tmp_path), None)) as cloud:
        keys: ApiKeys = cloud.app.state.api_keys
        admin = await keys.create("schemathesis", [scope.value for scope in Scope])
        spare = await keys.create("spare", [Scope.READ.value])
        slots = [SlotBody(item=11, name="Cola", price=2500)]
        await cloud.parts.fleet.create(MachineBody(id="lobby-1", name="Lobby", slots=slots))
        document = (await cloud.http.get("/schema/openapi.json")).json()
        yield Api(
            cloud,
            schemathesis.openapi.from_dict(document),
            {"Authorization": f"Bearer {admin.key}"},
            "lobby-1",
            spare.id,
        )


async def known_ids(api: Api, case: Case, data: st.DataObject) -> None:
    """Swap, each with even odds, a generated id for one that exists."""
    path = case.path_parameters or {}
    known = {"machine_id": api.machine_id, "key_id": api.spare_key_id}
    for name in set(path) & set(known):
        if data.draw(st.booleans(), label=f"known {name}"):
            path[name] = known[name]
    query = case.query or {}
    if "machine" in query and data.draw(st.booleans(), label="known machine"):
        query["machine"] = [api.machine_id]
    if isinstance(case.body, dict) and "code" in case.body and data.draw(st.booleans()):
        case.body["code"] = (await api.cloud.parts.fleet.claim_code(api.machine_id)).code


async def test_the_operations_tested_are_those_the_running_app_serves(api: Api) -> None:
    # schemathesis reads every operation of the served document (an unreadable one is an Err).
    operations = [result.ok() for result in api.schema.get_all_operations()]
    served = [(op.method.upper(), op.path) for op in operations if op.path.startswith("/api/v1/")]
    assert sorted(served) == sorted(OPERATIONS)
    assert CLAIMS in OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@BOUNDED
@given(data=st.data())
async def test_every_answer_is_one_the_document_promises(
    api: Api, method: str, path: str, data: st.DataObject
) -> None:
    case = data.draw(api.schema[path][method].as_strategy(), label="case")
    await known_ids(api, case, data)
    response = await api.send(case, api.headers)
    case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize(
    ("method", "path"), AUTHENTICATED, ids=[f"{m} {p}" for m, p in AUTHENTICATED]
)
@settings(BOUNDED, max_examples=5)
@given(data=st.data())
async def test_without_a_key_every_operator_route_is_401(
    api: Api, method: str, path: str, data: st.DataObject
) -> None:
    case = data.draw(api.schema[path][method].as_strategy(), label="case")
    await known_ids(api, case, data)
    for headers in ({}, {"Authorization": "Bearer vgk_0123456789abcdef_wrong"}):
        if case.headers is not None:
            case.headers.pop("Authorization", None)
        response = await api.send(case, headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["status"] == 401
        case.validate_response(response, checks=CHECKS)

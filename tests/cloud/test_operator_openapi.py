"""The operator API's OpenAPI document, as the running app serves it at /schema/openapi.json.

Every /api/v1 operation shows its request and response bodies, the ApiKey bearer scheme (all
but the public ``POST /api/v1/claims``) and each error it can answer as problem+json with the
``Problem`` schema. The document is valid OpenAPI, and /schema is the HTML reference.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flow_support import Cloud, cloud_settings, running_cloud, sqlite_url
from openapi_spec_validator import validate

from vendgate.cloud.operators import PROBLEM_JSON, ApiKeys, Scope
from vendgate.protocol.mqtt import is_valid_machine_id

Headers = dict[str, str]

PREFIX = "/api/v1"
PUBLIC = {("post", "/api/v1/claims")}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Each operation's error statuses: those of every route behind a key (400 a body that is not
# JSON, 401, 403, 422) and the ones its own work can give.
COMMON = {400, 401, 403, 422}
ERRORS = {
    ("get", "/api/v1/keys"): COMMON,
    ("post", "/api/v1/keys"): COMMON,
    ("delete", "/api/v1/keys/{key_id}"): COMMON | {404},
    ("get", "/api/v1/machines"): COMMON,
    ("post", "/api/v1/machines"): COMMON | {409, 502},
    ("get", "/api/v1/machines/{machine_id}"): COMMON | {404},
    ("patch", "/api/v1/machines/{machine_id}"): COMMON | {404},
    ("delete", "/api/v1/machines/{machine_id}"): COMMON | {404, 409, 502},
    ("put", "/api/v1/machines/{machine_id}/planogram"): COMMON | {404},
    ("post", "/api/v1/machines/{machine_id}/credentials"): COMMON | {404, 502},
    ("delete", "/api/v1/machines/{machine_id}/credentials"): COMMON | {404, 502},
    ("post", "/api/v1/machines/{machine_id}/claim-code"): COMMON | {404},
    ("get", "/api/v1/machines/{machine_id}/sticker"): COMMON | {404, 502},
    ("get", "/api/v1/stickers.pdf"): COMMON | {404, 502},
    ("post", "/api/v1/claims"): {400, 404, 422, 502},
}
# The operations that take a JSON body, and the schema each success answers with.
BODIES = {
    ("post", "/api/v1/keys"): "KeyRequest",
    ("post", "/api/v1/machines"): "MachineBody",
    ("patch", "/api/v1/machines/{machine_id}"): "MachinePatch",
    ("put", "/api/v1/machines/{machine_id}/planogram"): "SlotBody",
    ("post", "/api/v1/claims"): "ClaimRequest",
}
ANSWERS = {
    ("get", "/api/v1/keys"): "KeyView",
    ("post", "/api/v1/keys"): "NewKey",
    ("delete", "/api/v1/keys/{key_id}"): "KeyView",
    ("get", "/api/v1/machines"): "MachinePage",
    ("post", "/api/v1/machines"): "CreatedMachine",
    ("get", "/api/v1/machines/{machine_id}"): "MachineView",
    ("patch", "/api/v1/machines/{machine_id}"): "MachineView",
    ("put", "/api/v1/machines/{machine_id}/planogram"): "MachineView",
    ("post", "/api/v1/machines/{machine_id}/credentials"): "BrokerLogin",
    ("post", "/api/v1/machines/{machine_id}/claim-code"): "ClaimCodeView",
    ("post", "/api/v1/claims"): "BrokerLogin",
}
FILES = {
    ("get", "/api/v1/machines/{machine_id}/sticker"): {"image/png", "image/svg+xml"},
    ("get", "/api/v1/stickers.pdf"): {"application/pdf"},
}
NO_CONTENT = {
    ("delete", "/api/v1/machines/{machine_id}"),
    ("delete", "/api/v1/machines/{machine_id}/credentials"),
}


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    async with running_cloud(cloud_settings(sqlite_url(tmp_path), None)) as running:
        yield running


@pytest.fixture
async def document(cloud: Cloud) -> dict[str, Any]:
    response = await cloud.http.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    served: dict[str, Any] = response.json()
    return served


@pytest.fixture
async def headers(cloud: Cloud) -> Headers:
    keys: ApiKeys = cloud.app.state.api_keys
    made = await keys.create("openapi", [scope.value for scope in Scope])
    return {"Authorization": f"Bearer {made.key}"}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        if path.startswith(PREFIX):
            for method, operation in item.items():
                if method != "parameters":
                    yield method, path, operation


def refs(schema: dict[str, Any]) -> set[str]:
    """The component names a schema points at, directly or as an array's items."""
    found = {schema["$ref"]} if "$ref" in schema else set()
    for inner in (schema.get("items"), *schema.get("oneOf", ()), *schema.get("anyOf", ())):
        if isinstance(inner, dict):
            found |= refs(inner)
    return {ref.removeprefix("#/components/schemas/") for ref in found}


def test_the_tables_name_every_operator_route(document: dict[str, Any]) -> None:
    # A new route must be added to ERRORS (and BODIES/ANSWERS/FILES/NO_CONTENT) to pass.
    served = {(method, path) for method, path, _ in operations(document)}
    assert served == set(ERRORS)
    assert set(ANSWERS) | set(FILES) | NO_CONTENT == served
    assert set(BODIES) <= served


def test_every_operator_route_but_claims_needs_the_api_key(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for method, path, operation in operations(document):
        if (method, path) in PUBLIC:
            assert not operation.get("security"), (method, path)
        else:
            assert operation.get("security") == [{"ApiKey": []}], (method, path)
    assert "security" not in document  # nothing applies to the public route by default


def test_every_error_is_documented_as_problem_json(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        errors = {int(status) for status in responses if int(status) >= 400}
        assert errors == ERRORS[method, path], (method, path)
        for status in errors:
            content = responses[str(status)]["content"]
            # Only problem+json: Litestar's own 400 schema (status_code, extra) is not ours.
            assert content == {PROBLEM_JSON: {"schema": PROBLEM_REF}}, (method, path, status)
            assert responses[str(status)]["description"], (method, path, status)


def test_the_problem_schema_is_the_error_body(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) == {"type", "title", "status", "detail", "field"}
    assert sorted(problem["required"]) == ["detail", "status", "title", "type"]
    assert problem["properties"]["status"]["type"] == "integer"
    assert problem["properties"]["field"]["oneOf"] == [{"type": "string"}]  # never null


def test_every_operator_route_documents_its_bodies(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        body = operation.get("requestBody")
        if (method, path) in BODIES:
            schema = body["content"]["application/json"]["schema"]
            assert refs(schema) == {BODIES[method, path]}, (method, path)
            assert body["required"] is True, (method, path)
        else:
            assert body is None, (method, path)
        (success,) = (r for status, r in operation["responses"].items() if status.startswith("2"))
        if (method, path) in ANSWERS:
            schema = success["content"]["application/json"]["schema"]
            assert refs(schema) == {ANSWERS[method, path]}, (method, path)
        elif (method, path) in FILES:
            assert set(success["content"]) == FILES[method, path], (method, path)
        else:
            assert not success.get("content"), (method, path)


def test_the_customer_pages_and_the_webhook_stay_out_of_the_document(
    cloud: Cloud, document: dict[str, Any]
) -> None:
    webhook = cloud.parts.settings.webhooks.path
    paths = set(document["paths"])
    assert not {p for p in paths if p.startswith(("/m/", "/s/", webhook))}, paths
    assert "/healthz" in paths


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)  # raises on the first violation of the OpenAPI 3.1 schema


async def test_schema_serves_the_html_reference(cloud: Cloud) -> None:
    response = await cloud.http.get("/schema")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'data-url="/schema/openapi.json"' in response.text  # Scalar reads the document
    # The page's script comes from jsDelivr: its policy allows that, and only that page's.
    assert "https://cdn.jsdelivr.net" in response.headers["content-security-policy"]
    other = await cloud.http.get("/schema/openapi.json")
    assert "cdn.jsdelivr.net" not in other.headers["content-security-policy"]


def test_a_body_that_refuses_unknown_fields_says_so(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in set(BODIES.values()):
        assert schemas[name]["additionalProperties"] is False, name
    assert schemas["MachineView"].get("additionalProperties") is None  # answers may grow


@pytest.mark.parametrize(
    "machine_id", ["a", "Lobby_1-b", "x" * 64, "", "x" * 65, "a b", "ø", "a/b"]
)
def test_the_documented_machine_id_pattern_is_the_protocols(
    document: dict[str, Any], machine_id: str
) -> None:
    pattern = document["components"]["schemas"]["MachineBody"]["properties"]["id"]["pattern"]
    assert bool(re.search(pattern, machine_id)) == is_valid_machine_id(machine_id)


# -- the bodies behind the document's promises, where they were wrong before ----------------


async def test_a_missing_query_parameter_is_422_naming_it(cloud: Cloud, headers: Headers) -> None:
    response = await cloud.http.get("/api/v1/stickers.pdf", headers=headers)
    body = problem(response, 422)
    assert body["field"] == "machine"  # was "body"
    assert body["detail"] == "machine: Missing required query parameter 'machine'"


async def test_a_missing_body_is_422_naming_the_body(cloud: Cloud, headers: Headers) -> None:
    json = {**headers, "content-type": "application/json"}
    response = await cloud.http.post("/api/v1/machines", content=b"", headers=json)
    body = problem(response, 422)
    assert (body["field"], body["detail"]) == ("body", "body: a JSON body is required")
    response = await cloud.http.post("/api/v1/claims", json=["not", "an", "object"])
    assert problem(response, 422)["field"] == "body"  # Litestar calls it "data"


async def test_a_body_that_is_not_json_is_400_with_the_status_as_title(
    cloud: Cloud, headers: Headers
) -> None:
    json = {**headers, "content-type": "application/json"}
    response = await cloud.http.post("/api/v1/machines", content=b"{nope", headers=json)
    body = problem(response, 400)
    assert body["title"] == "Bad Request"  # was the detail again
    assert body["detail"].startswith("JSON is malformed")
    assert "field" not in body

"""Vipps' own published ePayment Postman collection, sent to `vendgate vipps-sim` over real HTTP.

A simulator must accept what the real API accepts, and Vipps' collection is what Vipps sends to
it: the token path spelled ``/accessToken/get`` (the gateway matches paths whatever their case)
and ``reference`` and ``customer.phoneNumber`` as JSON numbers. Every request of the collection
runs (``postman_runner.py``) in an order in which the real API answers each with success, and
every answer must be that success and validate against the official OpenAPI files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from openapi_core import OpenAPI
from postman_runner import PostmanRunner
from test_vipps_contract import CONFIG, SPEC_BY_PREFIX, SPECS, OpenApiRequest, OpenApiResponse
from vipps_support import SIM_BASE_URL

from vendgate.cloud.vipps import MerchantCredentials

COLLECTION = SPECS / "epayment-api.postman_collection.vippsas.json"
NOT_SIMULATED = {
    # GET /vipps-userinfo-api/userinfo/{sub}: the Login API's userinfo, not ePayment; and the
    # `sub` it needs comes only from a real customer's consent.
    "Get Userinfo",
}
# A key is for one operation (Vipps' error 4020 "Idempotency-Key already exists"), but these
# requests send the {{idempotency_key}} their payment's create set: a Postman user sets a new one.
NEW_KEY_FIRST = {"Capture payment", "Refund payment", "Cancel payment"}
CANCEL = "Cancel payment"
APPROVE = "Force approve payment"
# Each create variant of the collection, then what the real API accepts next.
SCENARIO = [
    "Get Access Token",
    "Create payment - Web redirect",
    APPROVE,
    "Get payment",
    "Capture payment",  # 1000 NOK øre of the collection's own body
    "Refund payment",
    "Get payment event log",
    "Create payment - QR",
    CANCEL,
    "Create payment - Push request",
    CANCEL,
    "Create payment - Native redirect",
    CANCEL,
    "Create payment - User info",
    APPROVE,
    CANCEL,  # releases the approved reservation
    "Create payment - Card",
    CANCEL,
]


@pytest.fixture
def vipps_sim_url() -> Iterator[str]:
    """``vendgate vipps-sim --port 0`` as a process; its first line is its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "vendgate", "vipps-sim", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("VENDGATE_VIPPS_")},
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    try:
        assert url.startswith("http://127.0.0.1:"), process.stderr.read() if process.stderr else ""
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def environment(base_url: str) -> dict[str, str]:
    """What a Postman user puts in their environment: the simulator's demo merchant."""
    merchant = MerchantCredentials()
    return {
        "base_url": base_url,
        "client_id": merchant.client_id,
        "client_secret": merchant.client_secret,
        "Ocp-Apim-Subscription-Key": merchant.subscription_key,
        "merchantSerialNumber": merchant.msn,
        "amount": "1500",
        "currency": "NOK",
        "internationalMobileNumber": "4712345678",
        "vipps_system_name": "vendgate-tests",
        "vipps_system_version": "1.0.0",
        "vipps_system_plugin_name": "postman-collection",
        "vipps_system_plugin_version": "1.0.0",
    }


def expected_status(name: str) -> int:
    return 201 if name.startswith("Create payment") else 200


class OfficialSpecs:
    """Checks an answer against the official OpenAPI file of its API."""

    def __init__(self) -> None:
        self._specs: dict[str, OpenAPI] = {}

    def violations(self, response: httpx.Response) -> list[str]:
        request = response.request
        # The specs spell every path in lower case. The collection's paths differ from them only
        # in case (/accessToken/get), and its path parameters are references made of digits, so
        # lower-casing gives the spec's spelling here.
        path = request.url.path.lower()
        spec = self._spec(path)
        assert spec is not None, f"no official spec for {path}"
        canonical = httpx.Request(
            request.method,
            httpx.URL(SIM_BASE_URL).copy_with(path=path),  # a server the specs name
            headers=request.headers,
            content=request.content,
        )
        try:
            spec.validate_response(OpenApiRequest(canonical), OpenApiResponse(response))
        except Exception as exc:
            cause = f" ({exc.__cause__})" if exc.__cause__ else ""
            return [f"{type(exc).__name__}: {exc}{cause}"]
        return []

    def _spec(self, path: str) -> OpenAPI | None:
        for prefix, filename in SPEC_BY_PREFIX.items():
            if path.startswith(prefix):
                if filename not in self._specs:
                    self._specs[filename] = OpenAPI.from_file_path(str(SPECS / filename), CONFIG)
                return self._specs[filename]
        return None


def token_of(created: httpx.Response) -> str | None:
    """The payment token in a create answer's ``redirectUrl`` (``?token=...``)."""
    redirect = created.json().get("redirectUrl")
    if redirect is None:
        return None
    return parse_qs(urlsplit(redirect).query)["token"][0]


def test_vipps_epayment_postman_collection_runs_against_the_simulator(
    vipps_sim_url: str,
) -> None:
    collection = json.loads(COLLECTION.read_text())
    specs = OfficialSpecs()
    with httpx.Client(timeout=10) as http:
        runner = PostmanRunner(collection, environment(vipps_sim_url), http)
        names = {item["name"] for item in runner.items()}
        assert names == set(SCENARIO) | NOT_SIMULATED, "the collection changed: update SCENARIO"
        failures = []
        for name in SCENARIO:
            if name in NEW_KEY_FIRST:
                runner.environment["idempotency_key"] = str(uuid.uuid4())
            response = runner.run(name)
            if response.status_code != expected_status(name):
                failures.append(f"{name}: {response.status_code} {response.text}")
                break
            failures += [f"{name}: {v}" for v in specs.violations(response)]
            if name.startswith("Create payment"):
                # The collection's script would keep the token from a 200 answer's `url`;
                # ePayment answers 201 with `redirectUrl`, so a Postman user sets it by hand.
                token = token_of(response)
                if token is not None:
                    runner.environment["payment_token"] = token
    assert not failures, "\n".join(failures)
    assert not runner.script_errors, runner.script_errors

    sent = dict(runner.sent)
    assert "/accessToken/get" in str(sent["Get Access Token"].request.url)  # as Vipps spells it
    created = json.loads(runner.sent[1][1].request.content)
    assert isinstance(created["reference"], int)  # sent as a JSON number ...
    assert isinstance(created["customer"]["phoneNumber"], int)
    payment = sent["Get payment"].json()
    assert payment["reference"] == str(created["reference"])  # ... and kept as the string
    log = sent["Get payment event log"].json()
    assert [(e["name"], e["amount"]["value"]) for e in log] == [
        ("CREATED", 1500),
        ("AUTHORIZED", 1500),
        ("CAPTURED", 1000),
        ("REFUNDED", 1000),
    ]


def test_the_collection_is_the_published_file() -> None:
    # SOURCES.md names its origin; a byte changed here would make this test prove less.
    import hashlib

    digest = hashlib.sha256(COLLECTION.read_bytes()).hexdigest()
    assert digest == "ce547bdf840d2d8f74aa9afbf60ab32fc1613f982e883f4adfe7db7a6eaec909"
    assert Path(SPECS / "SOURCES.md").read_text().count(COLLECTION.name) >= 1

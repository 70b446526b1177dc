"""The simulator accepts what the real Vipps API accepts, even where the specs are stricter.

Vipps' API gateway matches paths whatever their case (Vipps' own Postman collection calls
``/accessToken/get``), and the ePayment API takes ``reference`` and ``customer.phoneNumber`` as
JSON numbers (the collection sends them so). Path parameters keep their case: a reference is
case-sensitive.
"""

from __future__ import annotations

import httpx
import msgspec

from vendgate.cloud.vipps import MerchantCredentials
from vendgate.cloud.vippssim import VippsSimulator, canonical_path, route_templates

MERCHANT = MerchantCredentials()


TOKEN_HEADERS = {
    "client_id": MERCHANT.client_id,
    "client_secret": MERCHANT.client_secret,
    "Ocp-Apim-Subscription-Key": MERCHANT.subscription_key,
}


async def api_headers(sim_http: httpx.AsyncClient, **extra: str) -> dict[str, str]:
    token = (await sim_http.post("/accesstoken/get", headers=TOKEN_HEADERS)).json()["access_token"]
    return {
        "Authorization": f"Bearer {token}",
        "Ocp-Apim-Subscription-Key": MERCHANT.subscription_key,
        "Merchant-Serial-Number": MERCHANT.msn,
        **extra,
    }


def create_body(reference: object, phone: object) -> bytes:
    return msgspec.json.encode(
        {
            "amount": {"value": 2000, "currency": "NOK"},
            "paymentMethod": {"type": "WALLET"},
            "customer": {"phoneNumber": phone},
            "reference": reference,
            "userFlow": "WEB_REDIRECT",
            "returnUrl": "https://example.com/redirect",
            "paymentDescription": "Purchase of socks",
        }
    )


async def test_the_token_path_matches_whatever_its_case(sim_http: httpx.AsyncClient) -> None:
    for path in ("/accesstoken/get", "/accessToken/get", "/AccessToken/Get"):
        answer = await sim_http.post(path, headers=TOKEN_HEADERS)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()["access_token"]


async def test_literal_segments_match_any_case_but_path_parameters_keep_theirs(
    sim_http: httpx.AsyncClient,
) -> None:
    headers = await api_headers(sim_http, **{"Idempotency-Key": "mixed-case-1"})
    created = await sim_http.post(
        "/ePayment/V1/Payments",
        content=create_body("Vend-MixedCase-01", "4712345678"),
        headers=headers,
    )
    assert created.status_code == 201, created.text

    found = await sim_http.get("/EPAYMENT/v1/PAYMENTS/Vend-MixedCase-01", headers=headers)
    assert found.status_code == 200, found.text
    assert found.json()["reference"] == "Vend-MixedCase-01"
    other = await sim_http.get("/epayment/v1/payments/vend-mixedcase-01", headers=headers)
    assert other.status_code == 404  # another reference: the case of a reference counts


async def test_reference_and_phone_number_may_be_json_numbers(
    sim_http: httpx.AsyncClient, sim: VippsSimulator
) -> None:
    headers = await api_headers(sim_http, **{"Idempotency-Key": "numbers-1"})
    created = await sim_http.post(
        "/epayment/v1/payments",
        content=create_body(1234561717000000000, 4712345678),
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["reference"] == "1234561717000000000"
    assert sim.payments.find("1234561717000000000").request.customer is not None
    assert sim.payments.find("1234561717000000000").request.customer.phone_number == "4712345678"

    approve = await sim_http.post(
        "/epayment/v1/test/payments/1234561717000000000/approve",
        content=msgspec.json.encode({"customer": {"phoneNumber": 4712345678}}),
        headers=await api_headers(sim_http, **{"Content-Type": "application/json"}),
    )
    assert approve.status_code == 200, approve.text
    assert sim.payments.find("1234561717000000000").ledger.state == "AUTHORIZED"


async def test_other_json_types_are_still_refused_with_the_field_named(
    sim_http: httpx.AsyncClient,
) -> None:
    headers = await api_headers(sim_http, **{"Idempotency-Key": "numbers-2"})
    for reference in (True, 12345678.5, ["1234567890"]):
        answer = await sim_http.post(
            "/epayment/v1/payments", content=create_body(reference, "4712345678"), headers=headers
        )
        assert answer.status_code == 400, (reference, answer.text)
        assert "reference" in answer.text


def test_canonical_path_spells_literal_segments_as_the_route_does() -> None:
    templates = route_templates(
        ["/accesstoken/get", "/epayment/v1/payments/{reference:str}", "/sim/qr/{name:str}/scan"]
    )
    assert canonical_path("/accessToken/GET", templates) == "/accesstoken/get"
    assert canonical_path("/EPayment/v1/Payments/AbC-9", templates) == "/epayment/v1/payments/AbC-9"
    assert canonical_path("/sim/QR/Machine%207/SCAN", templates) == "/sim/qr/Machine%207/scan"
    assert canonical_path("/epayment/v1/payments/AbC-9", templates) is None  # already right
    assert canonical_path("/no/such/path", templates) is None
    assert canonical_path("/", templates) is None

"""What is not the merchant API: the customer's phone, QR scans, and simulator controls.

- ``/sim/landing?token=`` is where ``redirectUrl`` leads: a page with Approve and Reject.
- ``/sim/payments/{reference}/approve|reject`` do the same as a test call, no auth.
- ``/sim/qr/{id}.png|.svg`` are the QR images, ``/sim/qr/{id}/scan`` what the QR encodes.
- ``/sim/callback-qr/{id}.png|.svg`` are a merchant callback QR's images; ``/sim/callback-qr/
  {id}/scan`` (what it encodes) is the phone's "check in here" page, and ``POST /sim/callback-qr/
  {id}/check-in`` (no auth, optional ``{"customerToken": ...}``) does the check-in: a signed
  ``user.checked-in.v1`` to every webhook subscribed to it; the answer is the event sent.
- ``/sim/faults`` reads and changes fault injection; ``/sim/webhook-deliveries`` lists them.
"""

from __future__ import annotations

import html
from dataclasses import asdict, fields
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from ._faults import FaultSettings
from ._payments import SimPayment, decode_body
from ._problems import bad_request
from ._qr_codes import DEFAULT_PNG_SIZE, QrStore, png, svg
from ._responses import AnyRequest, base_url, json_response
from ._simulator import VippsSimulator

# The simulated phone's screen; ``content`` is one of the templates below, filled in.
PHONE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Vipps MobilePay (simulated)</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:28em;margin:2em auto;text-align:center}
button{font-size:1.2em;margin:.5em;padding:.5em 1.5em}</style></head>
<body><h1>Vipps MobilePay</h1><p><small>simulated phone</small></p>
{content}</body></html>"""

PAYMENT = """<p>{description}</p><p><strong>{amount}</strong></p>
<p>State: <b id="state">{state}</b></p>
{actions}"""

ACTIONS = """<form method="post" action="/sim/landing/{token}/approve">
<button id="approve" type="submit">Approve</button></form>
<form method="post" action="/sim/landing/{token}/reject">
<button id="reject" type="submit">Reject</button></form>"""

CHECK_IN = """<p>Pay at <strong>{location}</strong></p>
<form method="post" action="/sim/callback-qr/{qr_id}/check-in">
<button id="check-in" type="submit">Check in</button></form>"""


class CheckInRequest(msgspec.Struct, rename="camel", kw_only=True):
    """A test's check-in: which customer token the merchant receives (default: a new one)."""

    customer_token: str | None = None


def _phone(content: str) -> Response[str]:
    # replace, not format: the page's CSS has braces of its own.
    return Response(PHONE.replace("{content}", content), media_type="text/html")


def _page(payment: SimPayment) -> str:
    record = payment.ledger
    actions = ACTIONS.format(token=quote(payment.token)) if record.state == "CREATED" else ""
    return PAYMENT.format(
        description=html.escape(payment.request.payment_description or record.reference),
        amount=f"{record.amount / 100:.2f} {record.currency}",
        state=record.state,
        actions=actions,
    )


class CustomerController(Controller):
    path = "/sim"

    @get("/landing")
    async def landing(
        self, sim: NamedDependency[VippsSimulator], token: FromQuery[str]
    ) -> Response[str]:
        return _phone(_page(sim.payments.by_token(token)))

    @post("/landing/{token:str}/{decision:str}", status_code=303)
    async def decide(
        self, sim: NamedDependency[VippsSimulator], token: FromPath[str], decision: FromPath[str]
    ) -> Response[Any]:
        payment = sim.payments.by_token(token)
        _act(sim, payment, decision)
        # Like the app: back to the merchant's returnUrl once the customer has decided.
        target = payment.request.return_url or f"/sim/landing?token={quote(token)}"
        return Redirect(target, status_code=303)

    @post("/payments/{reference:str}/{decision:str}", status_code=200)
    async def decide_by_reference(
        self,
        sim: NamedDependency[VippsSimulator],
        reference: FromPath[str],
        decision: FromPath[str],
    ) -> Response[bytes]:
        _act(sim, sim.payments.find(reference), decision)
        return json_response(sim.payments.get(reference))

    @get(["/qr/{name:str}", "/callback-qr/{name:str}"])
    async def qr_image(
        self,
        request: AnyRequest,
        sim: NamedDependency[VippsSimulator],
        name: FromPath[str],
        size: FromQuery[int] = DEFAULT_PNG_SIZE,
    ) -> Response[bytes]:
        """A QR's image: ``name`` is ``{id}.png`` or ``{id}.svg``; it encodes the scan page."""
        folder = request.url.path.split("/")[2]  # "qr" (redirect) or "callback-qr"
        qr_id, _, suffix = name.rpartition(".")
        store: QrStore[Any] = sim.qr if folder == "qr" else sim.callback_qr
        store.get(qr_id)  # a 404 unless it exists
        root = base_url(request, sim.settings.public_url)
        content = f"{root}/sim/{folder}/{quote(qr_id, safe='')}/scan"
        if suffix == "png":
            return Response(png(content, max(100, min(size, 2000))), media_type="image/png")
        if suffix == "svg":
            return Response(svg(content), media_type="image/svg+xml")
        raise bad_request("QR images are .png or .svg", style="qr")

    @get("/callback-qr/{qr_id:str}/scan")
    async def callback_qr_scan(
        self, sim: NamedDependency[VippsSimulator], qr_id: FromPath[str]
    ) -> Response[str]:
        qr = sim.callback_qr.get(qr_id)
        location = html.escape(qr.location_description)
        return _phone(CHECK_IN.format(location=location, qr_id=quote(qr.id, safe="")))

    @post("/callback-qr/{qr_id:str}/check-in", status_code=200)
    async def check_in(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], qr_id: FromPath[str]
    ) -> Response[bytes]:
        body = await request.body()
        # The scan page's form posts no fields; a test may name the customer token.
        is_json = request.headers.get("content-type", "").startswith("application/json")
        wanted = decode_body(body, CheckInRequest) if is_json and body.strip() else CheckInRequest()
        return json_response(sim.check_in(qr_id, wanted.customer_token))

    @get("/qr/{qr_id:str}/scan", status_code=302)
    async def qr_scan(
        self, sim: NamedDependency[VippsSimulator], qr_id: FromPath[str]
    ) -> Response[Any]:
        # Merchant redirect QRs send the camera to the current target: updates apply at once.
        return Redirect(sim.qr.get(qr_id).redirect_url, status_code=302)

    @get("/faults")
    async def get_faults(self, sim: NamedDependency[VippsSimulator]) -> Response[bytes]:
        return json_response(_fault_dict(sim.faults))

    @post("/faults", status_code=200)
    async def set_faults(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator]
    ) -> Response[bytes]:
        changes = await request.json()
        names = {f.name for f in fields(FaultSettings)} - {"rng", "seed"}
        if not isinstance(changes, dict) or not set(changes) <= names:
            raise bad_request(f"faults take an object with keys among {sorted(names)}")
        for name, value in changes.items():
            setattr(sim.faults, name, type(getattr(sim.faults, name))(value))
        return json_response(_fault_dict(sim.faults))

    @get("/webhook-deliveries")
    async def deliveries(self, sim: NamedDependency[VippsSimulator]) -> Response[bytes]:
        return json_response([asdict(r) for r in sim.dispatcher.records])


def _act(sim: VippsSimulator, payment: SimPayment, decision: str) -> None:
    if decision == "approve":
        sim.payments.approve(payment)
    elif decision == "reject":
        sim.payments.reject(payment)
    else:
        raise bad_request("decision is approve or reject")


def _fault_dict(faults: FaultSettings) -> dict[str, Any]:
    return {f.name: getattr(faults, f.name) for f in fields(faults) if f.name not in ("rng",)}

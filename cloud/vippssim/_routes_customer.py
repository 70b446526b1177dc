"""What is not the merchant API: the customer's phone, QR scans, and simulator controls.

- ``/sim/landing?token=`` is where ``redirectUrl`` leads: a page with Approve and Reject.
- ``/sim/payments/{reference}/approve|reject`` do the same as a test call, no auth.
- ``/sim/qr/{id}.png|.svg`` are the QR images, ``/sim/qr/{id}/scan`` what the QR encodes.
- ``/sim/faults`` reads and changes fault injection; ``/sim/webhook-deliveries`` lists them.
"""

from __future__ import annotations

import html
from dataclasses import asdict, fields
from typing import Any
from urllib.parse import quote

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from ._faults import FaultSettings
from ._payments import SimPayment
from ._problems import bad_request
from ._qr_codes import DEFAULT_PNG_SIZE, png, svg
from ._responses import AnyRequest, base_url, json_response
from ._simulator import VippsSimulator

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Vipps MobilePay (simulated)</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:28em;margin:2em auto;text-align:center}}
button{{font-size:1.2em;margin:.5em;padding:.5em 1.5em}}</style></head>
<body><h1>Vipps MobilePay</h1><p><small>simulated phone</small></p>
<p>{description}</p><p><strong>{amount}</strong></p><p>State: <b id="state">{state}</b></p>
{actions}</body></html>"""

ACTIONS = """<form method="post" action="/sim/landing/{token}/approve">
<button id="approve" type="submit">Approve</button></form>
<form method="post" action="/sim/landing/{token}/reject">
<button id="reject" type="submit">Reject</button></form>"""


def _page(payment: SimPayment) -> str:
    record = payment.ledger
    actions = ACTIONS.format(token=quote(payment.token)) if record.state == "CREATED" else ""
    return PAGE.format(
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
        return Response(_page(sim.payments.by_token(token)), media_type="text/html")

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

    @get("/qr/{name:str}")
    async def qr_image(
        self,
        request: AnyRequest,
        sim: NamedDependency[VippsSimulator],
        name: FromPath[str],
        size: FromQuery[int] = DEFAULT_PNG_SIZE,
    ) -> Response[bytes]:
        qr_id, _, suffix = name.rpartition(".")
        root = base_url(request, sim.settings.public_url)
        content = f"{root}/sim/qr/{quote(sim.qr.get(qr_id).id, safe='')}/scan"
        if suffix == "png":
            return Response(png(content, max(100, min(size, 2000))), media_type="image/png")
        if suffix == "svg":
            return Response(svg(content), media_type="image/svg+xml")
        raise bad_request("QR images are .png or .svg", style="qr")

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

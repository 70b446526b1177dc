"""QR API v1 routes: merchant redirect QRs and merchant callback QRs.

The redirect API picks what ``url`` points at from the ``Accept`` header; the callback API picks
its image with the ``QrImageFormat`` and ``QrImageSize`` query parameters. Images and the scan
pages live under ``/sim/`` (``_routes_customer``).
"""

from __future__ import annotations

from urllib.parse import quote

from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath

from vendgate.cloud.vipps import (
    CallbackQrImageFormat,
    MerchantCallbackQr,
    MerchantCallbackQrRequest,
    MerchantRedirectQr,
    MerchantRedirectQrRequest,
    MerchantRedirectQrUpdate,
)

from ._payments import decode_body
from ._problems import SimProblem, bad_request
from ._qr_codes import DEFAULT_PNG_SIZE, CallbackQr, RedirectQr
from ._responses import AnyRequest, base_url, json_response
from ._simulator import VippsSimulator

QR_ACCEPT = ("image/*", "image/png", "image/svg+xml", "text/targeturl")
PNG_SIZES = range(100, 2001)


class MerchantRedirectController(Controller):
    """The QR API chooses what ``url`` points at from the ``Accept`` header."""

    path = "/qr/v1/merchant-redirect"

    @post("/", status_code=200)
    async def create(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=False)
        accept = _accept(request, unsupported_status=415)
        body = decode_body(await request.body(), MerchantRedirectQrRequest, "qr")
        qr = sim.qr.create(body.id, body.redirect_url, body.ttl, sim.timestamp())
        return json_response(_describe(request, sim, qr, accept))

    @get("/")
    async def list_all(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=False)
        accept = _accept(request, unsupported_status=400)
        return json_response([_describe(request, sim, qr, accept) for qr in sim.qr.all()])

    @get("/{qr_id:str}")
    async def get_one(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], qr_id: FromPath[str]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=False)
        accept = _accept(request, unsupported_status=400)
        return json_response(_describe(request, sim, sim.qr.get(qr_id), accept))

    @put("/{qr_id:str}")
    async def update(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], qr_id: FromPath[str]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=False)
        accept = _accept(request, unsupported_status=415)
        body = decode_body(await request.body(), MerchantRedirectQrUpdate, "qr")
        qr = sim.qr.update(qr_id, body.redirect_url)
        return json_response(_describe(request, sim, qr, accept))

    @delete("/{qr_id:str}", status_code=200)
    async def remove(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], qr_id: FromPath[str]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=False)
        sim.qr.delete(qr_id)
        return Response(b"", status_code=200)


def _accept(request: AnyRequest, *, unsupported_status: int) -> str:
    accept = request.headers.get("accept", "")
    if accept.lower() not in QR_ACCEPT:
        detail = (
            f"Accept must be one of image/*, image/png, image/svg+xml, text/targetUrl: {accept!r}"
        )
        raise SimProblem(unsupported_status, "Unsupported Accept", detail, style="qr")
    return accept.lower()


def _describe(
    request: AnyRequest, sim: VippsSimulator, qr: RedirectQr, accept: str
) -> MerchantRedirectQr:
    root = f"{base_url(request, sim.settings.public_url)}/sim/qr/{quote(qr.id, safe='')}"
    if accept == "image/png":
        size = request.headers.get("size") or str(DEFAULT_PNG_SIZE)
        url = f"{root}.png?size={size}"
    elif accept == "text/targeturl":
        url = f"{root}/scan"  # the QR's content: what a camera reads, then follows
    else:
        url = f"{root}.svg"
    return MerchantRedirectQr(
        id=qr.id, url=url, redirect_url=qr.redirect_url, expires_in=qr.expires_in(sim.timestamp())
    )


class MerchantCallbackController(Controller):
    """Merchant callback QRs of the one merchant; every call names it (Merchant-Serial-Number)."""

    path = "/qr/v1/merchant-callback"

    @get("/")
    async def list_all(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=True, style="qr")
        image = _callback_image(request)
        codes = sim.callback_qr.all()
        return json_response([_describe_callback(request, sim, qr, *image) for qr in codes])

    @get("/{qr_id:str}")
    async def get_one(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], qr_id: FromPath[str]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=True, style="qr")
        image = _callback_image(request)
        return json_response(_describe_callback(request, sim, sim.callback_qr.get(qr_id), *image))

    @put("/{qr_id:str}", status_code=200)
    async def create_or_update(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], qr_id: FromPath[str]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=True, style="qr")
        body = decode_body(await request.body(), MerchantCallbackQrRequest, "qr")
        sim.callback_qr.put(qr_id, body.location_description)
        return Response(b"", status_code=200)

    @delete("/{qr_id:str}", status_code=200)
    async def remove(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], qr_id: FromPath[str]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=True, style="qr")
        sim.callback_qr.delete(qr_id)
        return Response(b"", status_code=200)


def _callback_image(request: AnyRequest) -> tuple[CallbackQrImageFormat, int]:
    """``QrImageFormat`` (PNG or SVG, default SVG) and ``QrImageSize`` (100-2000 px)."""
    query = {name.lower(): value for name, value in request.query_params.items()}
    image_format = query.get("qrimageformat", "SVG").upper()
    if image_format not in ("PNG", "SVG"):
        raise bad_request(
            "QrImageFormat must be PNG or SVG", field_name="QrImageFormat", style="qr"
        )
    size = query.get("qrimagesize", str(DEFAULT_PNG_SIZE))
    if not size.isdigit() or int(size) not in PNG_SIZES:
        raise bad_request(
            "QrImageSize must be a whole number from 100 to 2000",
            field_name="QrImageSize",
            style="qr",
        )
    return ("PNG" if image_format == "PNG" else "SVG"), int(size)


def _describe_callback(
    request: AnyRequest,
    sim: VippsSimulator,
    qr: CallbackQr,
    image_format: CallbackQrImageFormat,
    size: int,
) -> MerchantCallbackQr:
    root = f"{base_url(request, sim.settings.public_url)}/sim/callback-qr/{quote(qr.id, safe='')}"
    image = f"{root}.png?size={size}" if image_format == "PNG" else f"{root}.svg"
    return MerchantCallbackQr(
        merchant_serial_number=sim.settings.credentials.msn,
        merchant_qr_id=qr.id,
        location_description=qr.location_description,
        qr_image_url=image,
        qr_content=f"{root}/scan",  # what the camera reads: the simulated phone's check-in
    )

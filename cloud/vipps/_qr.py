"""QR API v1: merchant redirect QRs (a sticker whose target we can change later) and merchant
callback QRs (a sticker whose scan sends us ``user.checked-in.v1`` with the customer's token)."""

from __future__ import annotations

import re
from urllib.parse import quote

from ._errors import VippsRequestInvalid
from ._http import VippsHttp, decode
from ._schemas import (
    CallbackQrImageFormat,
    MerchantCallbackQr,
    MerchantCallbackQrRequest,
    MerchantRedirectQr,
    MerchantRedirectQrRequest,
    MerchantRedirectQrUpdate,
    QrImageFormat,
)

REDIRECTS = "/qr/v1/merchant-redirect"
CALLBACKS = "/qr/v1/merchant-callback"
QR_ID_PATTERN = re.compile(r"^[-_+%æøåÆØÅ\w\s]{1,128}$")
LOCATION_DESCRIPTION_MAX = 36
_CALLBACK_ACCEPT = {"PNG": "image/png", "SVG": "image/svg+xml"}


def check_qr_id(qr_id: str) -> str:
    if not QR_ID_PATTERN.fullmatch(qr_id):
        raise VippsRequestInvalid(f"QR id must match {QR_ID_PATTERN.pattern}: {qr_id!r}")
    return qr_id


def check_callback_qr_id(qr_id: str) -> str:
    # The spec sets no pattern; an empty id or a "/" would change which path is called.
    if not qr_id or "/" in qr_id:
        raise VippsRequestInvalid(f"merchantQrId must be non-empty, without '/': {qr_id!r}")
    return qr_id


def check_location_description(text: str) -> str:
    if len(text) > LOCATION_DESCRIPTION_MAX:
        raise VippsRequestInvalid(
            f"locationDescription is at most {LOCATION_DESCRIPTION_MAX} characters: {text!r}"
        )
    return text


def _image_headers(image_format: QrImageFormat, size: int | None) -> dict[str, str]:
    # The QR API chooses the image format by Accept and the PNG size by a Size header.
    headers: dict[str, str] = {"Accept": image_format}
    if size is not None:
        headers["Size"] = str(size)
    return headers


def _callback_params(image_format: CallbackQrImageFormat, size: int | None) -> dict[str, str]:
    # Callback QRs take the same choice as query parameters.
    params: dict[str, str] = {"QrImageFormat": image_format}
    if size is not None:
        params["QrImageSize"] = str(size)
    return params


def _callback_path(qr_id: str) -> str:
    return f"{CALLBACKS}/{quote(check_callback_qr_id(qr_id), safe='')}"


class QrApi:
    def __init__(self, http: VippsHttp) -> None:
        self._http = http

    # -- merchant redirect ---------------------------------------------------------------------

    async def create_redirect(
        self,
        qr_id: str,
        redirect_url: str,
        *,
        ttl: int | None = None,
        image_format: QrImageFormat = "image/svg+xml",
        size: int | None = None,
    ) -> MerchantRedirectQr:
        body = MerchantRedirectQrRequest(id=check_qr_id(qr_id), redirect_url=redirect_url, ttl=ttl)
        headers = _image_headers(image_format, size)
        response = await self._http.call("POST", REDIRECTS, body=body, headers=headers)
        return decode(response, MerchantRedirectQr)

    async def get_redirect(
        self, qr_id: str, *, image_format: QrImageFormat = "image/svg+xml", size: int | None = None
    ) -> MerchantRedirectQr:
        path = f"{REDIRECTS}/{quote(qr_id, safe='')}"
        response = await self._http.call("GET", path, headers=_image_headers(image_format, size))
        return decode(response, MerchantRedirectQr)

    async def list_redirects(
        self, *, image_format: QrImageFormat = "image/svg+xml"
    ) -> list[MerchantRedirectQr]:
        headers = _image_headers(image_format, None)
        response = await self._http.call("GET", REDIRECTS, headers=headers)
        return decode(response, list[MerchantRedirectQr])

    async def update_redirect(
        self, qr_id: str, redirect_url: str, *, image_format: QrImageFormat = "image/svg+xml"
    ) -> MerchantRedirectQr:
        """Point an existing (already printed) QR at a new target; the image stays the same."""
        path = f"{REDIRECTS}/{quote(qr_id, safe='')}"
        body = MerchantRedirectQrUpdate(redirect_url=redirect_url)
        headers = _image_headers(image_format, None)
        response = await self._http.call("PUT", path, body=body, headers=headers)
        return decode(response, MerchantRedirectQr)

    async def delete_redirect(self, qr_id: str) -> None:
        await self._http.call("DELETE", f"{REDIRECTS}/{quote(qr_id, safe='')}")

    async def redirect_image(
        self, qr_id: str, *, image_format: QrImageFormat = "image/png", size: int | None = None
    ) -> bytes:
        """The QR image (PNG or SVG bytes): ask for its link, then fetch it (no auth needed)."""
        qr = await self.get_redirect(qr_id, image_format=image_format, size=size)
        response = await self._http.get_unauthenticated(qr.url, {"Accept": image_format})
        return response.content

    # -- merchant callback ---------------------------------------------------------------------

    async def put_callback(self, qr_id: str, location_description: str) -> None:
        """Create the callback QR ``qr_id``, or change its location text (the image stays)."""
        body = MerchantCallbackQrRequest(
            location_description=check_location_description(location_description)
        )
        await self._http.call("PUT", _callback_path(qr_id), body=body)

    async def get_callback(
        self, qr_id: str, *, image_format: CallbackQrImageFormat = "SVG", size: int | None = None
    ) -> MerchantCallbackQr:
        params = _callback_params(image_format, size)
        response = await self._http.call("GET", _callback_path(qr_id), params=params)
        return decode(response, MerchantCallbackQr)

    async def list_callbacks(
        self, *, image_format: CallbackQrImageFormat = "SVG", size: int | None = None
    ) -> list[MerchantCallbackQr]:
        params = _callback_params(image_format, size)
        response = await self._http.call("GET", CALLBACKS, params=params)
        return decode(response, list[MerchantCallbackQr])

    async def delete_callback(self, qr_id: str) -> None:
        await self._http.call("DELETE", _callback_path(qr_id))

    async def callback_image(
        self, qr_id: str, *, image_format: CallbackQrImageFormat = "PNG", size: int | None = None
    ) -> bytes:
        """The sticker's image (PNG or SVG bytes), fetched from ``qrImageUrl`` (no auth)."""
        qr = await self.get_callback(qr_id, image_format=image_format, size=size)
        accept = {"Accept": _CALLBACK_ACCEPT[image_format]}
        response = await self._http.get_unauthenticated(qr.qr_image_url, accept)
        return response.content

"""QR API v1, merchant redirect QR: a printable sticker whose target we can change later."""

from __future__ import annotations

import re
from urllib.parse import quote

from ._errors import VippsRequestInvalid
from ._http import VippsHttp, decode
from ._schemas import (
    MerchantRedirectQr,
    MerchantRedirectQrRequest,
    MerchantRedirectQrUpdate,
    QrImageFormat,
)

REDIRECTS = "/qr/v1/merchant-redirect"
QR_ID_PATTERN = re.compile(r"^[-_+%æøåÆØÅ\w\s]{1,128}$")


def check_qr_id(qr_id: str) -> str:
    if not QR_ID_PATTERN.fullmatch(qr_id):
        raise VippsRequestInvalid(f"QR id must match {QR_ID_PATTERN.pattern}: {qr_id!r}")
    return qr_id


def _image_headers(image_format: QrImageFormat, size: int | None) -> dict[str, str]:
    # The QR API chooses the image format by Accept and the PNG size by a Size header.
    headers: dict[str, str] = {"Accept": image_format}
    if size is not None:
        headers["Size"] = str(size)
    return headers


class QrApi:
    def __init__(self, http: VippsHttp) -> None:
        self._http = http

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

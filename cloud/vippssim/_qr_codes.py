"""Merchant redirect QR codes: the store, and their images (PNG or SVG) made with ``qrcode``."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import qrcode
import qrcode.image.svg

from ._problems import SimProblem, bad_request, not_found

QR_ID = re.compile(r"^[-_+%æøåÆØÅ\w\s]{1,128}$")
HTTPS_TARGET = re.compile(r"^https:\/\/[\w\.]+([\w#!:.?+=&%@\-\/]+)?$")
HTTP_TARGET = re.compile(r"^https?:\/\/[\w\.]+([\w#!:.?+=&%@\-\/]+)?$")
DEFAULT_PNG_SIZE = 1024


@dataclass
class RedirectQr:
    id: str
    redirect_url: str
    ttl: int | None
    created_at: float

    def expires_in(self, now: float) -> int:
        """Seconds left; -1 means the QR never expires (the merchant-redirect default)."""
        if self.ttl is None:
            return -1
        return max(0, int(self.created_at + self.ttl - now))


class RedirectQrStore:
    def __init__(self, require_https: bool) -> None:
        self._target = HTTPS_TARGET if require_https else HTTP_TARGET
        self._codes: dict[str, RedirectQr] = {}

    def check_target(self, url: str) -> None:
        if not self._target.fullmatch(url):
            detail = (
                f"The field RedirectUrl must match the regular expression '{self._target.pattern}'."
            )
            raise bad_request(detail, field_name="RedirectUrl", style="qr")

    def create(self, qr_id: str, url: str, ttl: int | None, now: float) -> RedirectQr:
        if not QR_ID.fullmatch(qr_id):
            raise bad_request(
                "id must be 1-128 letters, digits, spaces or -_+%", field_name="Id", style="qr"
            )
        if ttl is not None and ttl < 300:
            raise bad_request("ttl must be at least 300 seconds", field_name="Ttl", style="qr")
        self.check_target(url)
        if qr_id in self._codes:
            raise SimProblem(409, "Conflict", f"QR {qr_id} already exists", body={"id": qr_id})
        qr = self._codes[qr_id] = RedirectQr(qr_id, url, ttl, now)
        return qr

    def get(self, qr_id: str) -> RedirectQr:
        qr = self._codes.get(qr_id)
        if qr is None:
            raise not_found(f"no merchant redirect QR with id {qr_id}", style="qr")
        return qr

    def all(self) -> list[RedirectQr]:
        return list(self._codes.values())

    def update(self, qr_id: str, url: str) -> RedirectQr:
        qr = self.get(qr_id)
        self.check_target(url)
        qr.redirect_url = url
        return qr

    def delete(self, qr_id: str) -> None:
        self.get(qr_id)
        del self._codes[qr_id]


def png(content: str, size: int = DEFAULT_PNG_SIZE) -> bytes:
    image = qrcode.make(content, border=4).get_image().convert("1").resize((size, size), 0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def svg(content: str) -> bytes:
    image = qrcode.make(content, image_factory=qrcode.image.svg.SvgPathImage, border=4)
    return image.to_string(encoding="unicode").encode("utf-8")

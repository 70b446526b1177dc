"""QR codes: merchant redirect and merchant callback stores, and images made with ``qrcode``."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Generic, TypeVar

import qrcode
import qrcode.image.svg

from ._problems import SimProblem, bad_request, not_found

QR_ID = re.compile(r"^[-_+%æøåÆØÅ\w\s]{1,128}$")
HTTPS_TARGET = re.compile(r"^https:\/\/[\w\.]+([\w#!:.?+=&%@\-\/]+)?$")
HTTP_TARGET = re.compile(r"^https?:\/\/[\w\.]+([\w#!:.?+=&%@\-\/]+)?$")
DEFAULT_PNG_SIZE = 1024
LOCATION_DESCRIPTION_MAX = 36

Q = TypeVar("Q")


class QrStore(Generic[Q]):
    """The QR codes of one kind by id: what every kind can do."""

    kind = "QR"

    def __init__(self) -> None:
        self._codes: dict[str, Q] = {}

    def get(self, qr_id: str) -> Q:
        qr = self._codes.get(qr_id)
        if qr is None:
            raise not_found(f"no {self.kind} with id {qr_id}", style="qr")
        return qr

    def all(self) -> list[Q]:
        return list(self._codes.values())

    def delete(self, qr_id: str) -> None:
        self.get(qr_id)
        del self._codes[qr_id]


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


class RedirectQrStore(QrStore[RedirectQr]):
    kind = "merchant redirect QR"

    def __init__(self, require_https: bool) -> None:
        super().__init__()
        self._target = HTTPS_TARGET if require_https else HTTP_TARGET

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

    def update(self, qr_id: str, url: str) -> RedirectQr:
        qr = self.get(qr_id)
        self.check_target(url)
        qr.redirect_url = url
        return qr


@dataclass
class CallbackQr:
    id: str
    location_description: str


class CallbackQrStore(QrStore[CallbackQr]):
    """Merchant callback QRs by ``merchantQrId``; a PUT creates one or changes its location."""

    kind = "merchant callback QR"

    def put(self, qr_id: str, location_description: str) -> CallbackQr:
        if len(location_description) > LOCATION_DESCRIPTION_MAX:
            raise bad_request(
                f"locationDescription must be at most {LOCATION_DESCRIPTION_MAX} characters",
                field_name="LocationDescription",
                style="qr",
            )
        qr = self._codes.get(qr_id)
        if qr is None:
            qr = self._codes[qr_id] = CallbackQr(qr_id, location_description)
        qr.location_description = location_description  # the last PUT decides
        return qr


def png(content: str, size: int = DEFAULT_PNG_SIZE) -> bytes:
    image = qrcode.make(content, border=4).get_image().convert("1").resize((size, size), 0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def svg(content: str) -> bytes:
    image = qrcode.make(content, image_factory=qrcode.image.svg.SvgPathImage, border=4)
    return image.to_string(encoding="unicode").encode("utf-8")

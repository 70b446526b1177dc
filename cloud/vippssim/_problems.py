"""Error bodies the way each Vipps API writes them."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec

Style = Literal["problem", "qr"]
PROBLEM_JSON = "application/problem+json"


class SimProblem(Exception):
    """Raised by simulator services; the app turns it into the API's error body."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        code: str | None = None,
        field_name: str | None = None,
        style: Style = "problem",
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.field_name = field_name
        self.style = style
        self.body = body


def problem_body(problem: SimProblem, instance: str) -> tuple[bytes, str]:
    """(body, media type): RFC 7807 for ePayment/Webhooks, ``ErrorResponse`` for QR/OM."""
    if problem.body is not None:
        return msgspec.json.encode(problem.body), "application/json"
    if problem.style == "qr":
        return _qr_style(problem, instance), "application/json"
    extra: list[dict[str, str]] = []
    if problem.code:
        extra.append({"name": "ErrorCode", "reason": problem.code})
    if problem.field_name:
        extra.append({"name": problem.field_name, "reason": problem.detail})
    body: dict[str, Any] = {
        "type": f"https://httpstatuses.io/{problem.status}",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
        "traceId": uuid.uuid4().hex,
        "extraDetails": extra or None,
    }
    return msgspec.json.encode(body), PROBLEM_JSON


def _qr_style(problem: SimProblem, instance: str) -> bytes:
    body: dict[str, Any] = {
        "type": f"https://httpstatuses.io/{problem.status}",
        "title": problem.title,
        "detail": problem.detail,
        "instance": instance or "-",
    }
    if problem.field_name:
        body["invalidParams"] = [{"name": problem.field_name, "reason": problem.detail}]
    return msgspec.json.encode(body)


def bad_request(
    detail: str, *, field_name: str | None = None, style: Style = "problem"
) -> SimProblem:
    return SimProblem(400, "Bad Request", detail, field_name=field_name, style=style)


def not_found(detail: str, *, style: Style = "problem") -> SimProblem:
    return SimProblem(404, "Not Found", detail, style=style)

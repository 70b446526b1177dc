"""The ``VippsError`` tree: local mistakes, transport failures and API answers kept apart.

::

    VippsError
    ├── VippsRequestInvalid          we refused to send it (bad reference, key too long, ...)
    ├── VippsTransportError          no HTTP answer: network error, retryable
    │   └── VippsTimeoutError
    ├── VippsResponseInvalid         a 2xx body we cannot decode
    ├── VippsApiError                Vipps answered with an error status (status, problem, code)
    │   ├── VippsRetryableApiError   5xx, 429, 423: try again later with the same key
    │   ├── VippsBadRequest          400: "no", do not retry with the same key
    │   ├── VippsUnauthorized        401, 403
    │   ├── VippsNotFound            404
    │   └── VippsConflict            409: key reused with another body, reference exists, ...
    └── WebhookVerificationError     a webhook failed signature, hash or freshness checks
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

ERROR_CODE_NAME = "ErrorCode"


class VippsError(Exception):
    """Root of every error this package raises."""


class VippsRequestInvalid(VippsError, ValueError):
    """The caller asked for a request Vipps would reject; nothing was sent."""


class VippsTransportError(VippsError):
    """No HTTP response arrived; the operation may or may not have taken effect."""


class VippsTimeoutError(VippsTransportError):
    """The request timed out; retry with the same Idempotency-Key or read the payment back."""


class VippsResponseInvalid(VippsError):
    """A success response whose body does not match the documented schema."""


class WebhookVerificationError(VippsError):
    """A webhook request is not provably from Vipps, or is too old."""


class VippsApiError(VippsError):
    """Vipps answered with an error status; carries what it said."""

    retryable = False

    def __init__(self, status: int, problem: dict[str, Any], *, retry_after: float | None = None):
        self.status = status
        self.problem = problem
        self.retry_after = retry_after
        super().__init__(self._summary())

    @property
    def error_code(self) -> str | None:
        """The Vipps domain code (``extraDetails`` entry named ``ErrorCode``), e.g. ``"6090"``."""
        for detail in self.problem.get("extraDetails") or []:
            if isinstance(detail, dict) and detail.get("name") == ERROR_CODE_NAME:
                reason = detail.get("reason")
                return str(reason) if reason is not None else None
        return None

    @property
    def title(self) -> str | None:
        value = self.problem.get("title") or self.problem.get("message")
        return str(value) if value is not None else None

    @property
    def detail(self) -> str | None:
        value = self.problem.get("detail")
        return str(value) if value is not None else None

    @property
    def trace_id(self) -> str | None:
        value = self.problem.get("traceId") or self.problem.get("instance")
        return str(value) if value is not None else None

    def _summary(self) -> str:
        parts = [f"HTTP {self.status}"]
        if self.error_code:
            parts.append(f"code {self.error_code}")
        parts += [p for p in (self.title, self.detail) if p]
        if self.trace_id:
            parts.append(f"trace {self.trace_id}")
        return ": ".join(parts)


class VippsRetryableApiError(VippsApiError):
    """5xx, 429 (rate limited) or 423 (locked): the same request may succeed later."""

    retryable = True


class VippsBadRequest(VippsApiError):
    """400: the request was understood and refused (validation or a business rule)."""


class VippsUnauthorized(VippsApiError):
    """401 or 403: wrong or missing credentials, token or product access."""


class VippsNotFound(VippsApiError):
    """404: no such payment, webhook or QR."""


class VippsConflict(VippsApiError):
    """409: the key or reference is already used for something else."""


def is_retryable_status(status: int) -> bool:
    return status >= 500 or status in (423, 429)


_BY_STATUS: dict[int, type[VippsApiError]] = {
    400: VippsBadRequest,
    401: VippsUnauthorized,
    403: VippsUnauthorized,
    404: VippsNotFound,
    409: VippsConflict,
}


def parse_problem(content: bytes) -> dict[str, Any]:
    """Any error body as a dict: RFC 7807 (ePayment, Webhooks), QR/OM shapes, APIM, or text."""
    if not content:
        return {}
    try:
        decoded = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return {"detail": content.decode("utf-8", errors="replace")[:500]}
    return decoded if isinstance(decoded, dict) else {"detail": str(decoded)[:500]}


def error_from_response(response: httpx.Response, retry_after: float | None) -> VippsApiError:
    problem = parse_problem(response.content)
    status = response.status_code
    if is_retryable_status(status):
        return VippsRetryableApiError(status, problem, retry_after=retry_after)
    return _BY_STATUS.get(status, VippsApiError)(status, problem)

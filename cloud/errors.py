"""The cloud's error tree: one root, each error knowing its HTTP status and its wording.

::

    VendgateError
    ├── NotFound                unknown machine, session or page (404)
    ├── MachineUnavailable      offline, busy or disabled at scan time (409, friendly page)
    ├── RateLimited             too many scans of one machine, or polls of one page (429)
    ├── InvalidPlanogram        a slot the cloud could not sell, price or put on a receipt (422)
    ├── PaymentStartFailed      Vipps refused or did not answer the create call (502)
    ├── BadWebhook              a webhook with a bad signature, hash, date or body (401/400)
    ├── Unauthorized            an operator route without a valid API key (401)
    ├── Forbidden               an API key without the route's scope (403)
    ├── Conflict                a change the resource's state refuses now (409)
    ├── InvalidInput            an operator's body or parameter out of bounds (422, names it)
    ├── BrokerUnavailable       the broker refused or did not answer a login change (502)
    └── HttpRefusal             Litestar's own: no such route, method not allowed (404, 405, ...)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from http import HTTPStatus


class VendgateError(Exception):
    status_code = 500
    title = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def headers(self) -> dict[str, str]:
        """Headers the answer must carry (``Retry-After``, ``Allow``, ...)."""
        return {}


class NotFound(VendgateError):
    status_code = 404
    title = "Not found"


class Unavailability(StrEnum):
    OFFLINE = "offline"
    BUSY = "busy"
    DISABLED = "disabled"


class MachineUnavailable(VendgateError):
    status_code = 409
    title = "Machine unavailable"

    def __init__(self, machine_name: str, reason: Unavailability) -> None:
        super().__init__(f"{machine_name} is {reason}")
        self.machine_name = machine_name
        self.reason = reason


class PaymentStartFailed(VendgateError):
    status_code = 502
    title = "Payment could not be started"


class BadWebhook(VendgateError):
    status_code = 401
    title = "Webhook rejected"


class MalformedWebhook(BadWebhook):
    status_code = 400
    title = "Malformed webhook"


class RateLimited(VendgateError):
    """Too many requests for one machine or one status page (429, friendly page)."""

    status_code = 429
    title = "Too many requests"

    def __init__(self, retry_after: float, machine_name: str | None = None) -> None:
        # Whole seconds for ``Retry-After``, never 0 (that would invite an immediate retry).
        self.retry_after = max(1, math.ceil(retry_after))
        what = f"{machine_name} was scanned" if machine_name else "this page was asked for"
        super().__init__(f"{what} too often; try again in {self.retry_after} s")
        self.machine_name = machine_name

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Unauthorized(VendgateError):
    status_code = 401
    title = "Unauthorized"

    @property
    def headers(self) -> dict[str, str]:
        # RFC 9110 11.6.1: a 401 names the scheme that would be accepted.
        return {"WWW-Authenticate": 'Bearer realm="vendgate"'}


class Forbidden(VendgateError):
    status_code = 403
    title = "Forbidden"


class Conflict(VendgateError):
    status_code = 409
    title = "Conflict"


class InvalidInput(VendgateError, ValueError):
    """A request field out of bounds (422); ``field`` names it (``slots[2].price``)."""

    status_code = 422
    title = "Invalid input"

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.field = field


class BrokerUnavailable(VendgateError):
    status_code = 502
    title = "Broker unavailable"


class InvalidPlanogram(VendgateError, ValueError):
    """A planogram slot out of bounds, or an item number given twice (422).

    ``field`` names the offending field (``item``, ``name``, ``price``, ``vat_rate``) and
    ``item`` the slot's item number, so a caller can point at it; ``detail`` says both.
    """

    status_code = 422
    title = "Invalid planogram"

    def __init__(self, detail: str, *, field: str, item: object) -> None:
        super().__init__(detail)
        self.field = field
        self.item = item


class HttpRefusal(VendgateError):
    """Litestar refused the request itself (no route, wrong method, bad parameter).

    Keeps the status and the headers Litestar put on it: ``Allow`` on a 405 (RFC 9110 15.5.6).
    """

    def __init__(self, status_code: int, detail: str, headers: Mapping[str, str] | None) -> None:
        super().__init__(detail)
        # RFC 9457 3.1.3: with type about:blank the title is the status's own phrase.
        self.status_code, self.title = status_code, _phrase(status_code) or detail
        self._headers = dict(headers or {})

    @property
    def headers(self) -> dict[str, str]:
        return self._headers


def _phrase(status_code: int) -> str | None:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return None


class InvalidSetting(VendgateError):
    """A ``VENDGATE_*`` variable that is not a usable value: the program refuses to start."""

    title = "Invalid setting"

    def __init__(self, variable: str, value: str, wanted: str) -> None:
        super().__init__(f"{variable}={value!r}: must be {wanted}")
        self.variable = variable

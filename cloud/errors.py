"""The cloud's error tree: one root, each error knowing its HTTP status and its wording.

::

    VendgateError
    ├── NotFound                unknown machine, session or page (404)
    ├── MachineUnavailable      offline, busy or disabled at scan time (409, friendly page)
    ├── PaymentStartFailed      Vipps refused or did not answer the create call (502)
    └── BadWebhook              a webhook with a bad signature, hash, date or body (401/400)
"""

from __future__ import annotations

from enum import StrEnum


class VendgateError(Exception):
    status_code = 500
    title = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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

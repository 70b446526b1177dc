"""Payments: the Vipps calls of a session, the poller, and the Vipps webhook endpoint."""

from ._calls import (
    FINAL_FAILURES,
    cancel,
    capture,
    create_payment,
    create_request,
    fetch,
    post_receipt,
    receipt,
)
from ._poller import apply_poll, unlock_amount
from ._webhooks import CheckedIn, ensure_webhook_registered, verify, webhook_handler

__all__ = [
    "FINAL_FAILURES",
    "CheckedIn",
    "apply_poll",
    "cancel",
    "capture",
    "create_payment",
    "create_request",
    "ensure_webhook_registered",
    "fetch",
    "post_receipt",
    "receipt",
    "unlock_amount",
    "verify",
    "webhook_handler",
]

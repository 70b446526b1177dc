"""Payments: the Vipps webhook endpoint (an adapter: a webhook is a hint for the vend service)."""

from ._webhooks import CheckedIn, ensure_webhook_registered, verify, webhook_handler

__all__ = ["CheckedIn", "ensure_webhook_registered", "verify", "webhook_handler"]

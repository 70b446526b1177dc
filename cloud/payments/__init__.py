"""Payments: the Vipps webhook endpoint (an adapter: a webhook is a hint for the vend service)."""

from ._webhooks import ensure_webhook_registered, verify, webhook_handler

__all__ = ["ensure_webhook_registered", "verify", "webhook_handler"]

"""Payments: the Vipps webhook endpoint (an adapter: a webhook is a hint for the vend service)."""

from ._webhooks import Webhooks, webhook_handler

__all__ = ["Webhooks", "webhook_handler"]

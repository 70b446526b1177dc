"""Simulator settings: the merchant it accepts, timings, and fault injection."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from vendgate.cloud.vipps import MerchantCredentials

from ._faults import FaultSettings

# Vipps retries a failed webhook about every 2 s at first, then minutes, then hours for 7 days.
# The simulator keeps the shape on a shorter scale; tests pass their own (and a fake sleep).
DEFAULT_WEBHOOK_RETRY_DELAYS = (2.0, 2.0, 2.0, 2.0, 10.0, 30.0, 60.0)


@dataclass
class SimSettings:
    credentials: MerchantCredentials = field(default_factory=MerchantCredentials)
    # Seconds a CREATED payment waits for the customer before EXPIRED (Vipps: 10 minutes).
    payment_expiry: float = 600.0
    # Seconds an access token lives (Vipps: 1 hour in test, 24 hours in production).
    token_lifetime: int = 3600
    # Public base URL for links the simulator hands out (redirectUrl, QR images); by default
    # the base URL of the request that created them.
    public_url: str | None = None
    # Vipps demands https for webhook and QR target URLs; a laptop demo needs http://127.0.0.1.
    require_https: bool = False
    webhook_retry_delays: tuple[float, ...] = DEFAULT_WEBHOOK_RETRY_DELAYS
    webhook_timeout: float = 10.0
    faults: FaultSettings = field(default_factory=FaultSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SimSettings:
        env = os.environ if environ is None else environ
        return cls(credentials=MerchantCredentials.from_env(env))

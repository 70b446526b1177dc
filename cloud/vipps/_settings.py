"""Merchant settings for one Vipps MobilePay sales unit, read from ``VENDGATE_VIPPS_*``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

ENV_PREFIX = "VENDGATE_VIPPS_"

# The simulator's demo merchant: the cloud and `vendgate vipps-sim` fall back to the same values,
# so the demo needs no configuration. Real hosts reject them, which is the point.
DEMO_CLIENT_ID = "00000000-0000-4000-8000-000000000001"
DEMO_CLIENT_SECRET = "vendgate-demo-client-secret"
DEMO_SUBSCRIPTION_KEY = "vendgate-demo-subscription-key"
DEMO_MSN = "123456"
DEFAULT_BASE_URL = "http://127.0.0.1:8090"

TEST_BASE_URL = "https://apitest.vipps.no"
PRODUCTION_BASE_URL = "https://api.vipps.no"


@dataclass(frozen=True)
class MerchantCredentials:
    """What identifies the merchant to Vipps; shared by the cloud and the simulator."""

    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    subscription_key: str = DEMO_SUBSCRIPTION_KEY
    msn: str = DEMO_MSN

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MerchantCredentials:
        env = os.environ if environ is None else environ
        return cls(
            client_id=env.get(f"{ENV_PREFIX}CLIENT_ID", DEMO_CLIENT_ID),
            client_secret=env.get(f"{ENV_PREFIX}CLIENT_SECRET", DEMO_CLIENT_SECRET),
            subscription_key=env.get(f"{ENV_PREFIX}SUBSCRIPTION_KEY", DEMO_SUBSCRIPTION_KEY),
            msn=env.get(f"{ENV_PREFIX}MSN", DEMO_MSN),
        )

    def __repr__(self) -> str:
        # Secrets must never reach a log line through a repr.
        return f"MerchantCredentials(client_id={self.client_id!r}, msn={self.msn!r})"


@dataclass(frozen=True)
class VippsSettings:
    """One merchant configuration: where Vipps is, who we are, how we name ourselves."""

    base_url: str = DEFAULT_BASE_URL
    credentials: MerchantCredentials = MerchantCredentials()
    system_name: str = "vendgate"
    system_version: str = "0.1.0"
    plugin_name: str = "vendgate-cloud"
    plugin_version: str = "0.1.0"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VippsSettings:
        env = os.environ if environ is None else environ
        return cls(
            base_url=env.get(f"{ENV_PREFIX}BASE_URL", DEFAULT_BASE_URL).rstrip("/"),
            credentials=MerchantCredentials.from_env(env),
        )

"""Test tiers: which external parts a test needs, and whether a missing part skips or fails.

On a laptop a tier whose part is missing (no `mosquitto` binary, no PostgreSQL) is skipped with a
reason. CI sets ``VENDGATE_REQUIRE_TIERS=amqtt,mosquitto,postgres``: there a missing part is a
failure, and a run in which a required tier passed no test fails too.
"""

from __future__ import annotations

import os

import pytest

TIERS = ("amqtt", "mosquitto", "postgres")


def required_tiers() -> set[str]:
    raw = os.environ.get("VENDGATE_REQUIRE_TIERS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def unavailable(tier: str, reason: str) -> None:
    """Skip the test (laptop) or fail it (CI requires the tier)."""
    if tier in required_tiers():
        pytest.fail(f"tier {tier!r} is required here but unavailable: {reason}", pytrace=False)
    pytest.skip(f"{tier} tier unavailable: {reason}")

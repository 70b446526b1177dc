"""Fault injection, off by default: slow or failing API answers, unreliable webhooks."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

ApiFault = Literal["none", "error", "error_after_effect", "rate_limited"]


@dataclass
class FaultSettings:
    """Shares are probabilities in [0, 1]; change them at any time, even mid-run."""

    latency: float = 0.0  # seconds added to every API answer
    error_share: float = 0.0  # 500 before doing anything
    error_after_effect_share: float = 0.0  # 500 after the effect happened (answer "lost")
    rate_limit_share: float = 0.0  # 429 with Retry-After, before doing anything
    retry_after: int = 1
    webhook_drop_share: float = 0.0  # an event is never delivered
    webhook_duplicate_share: float = 0.0  # an event is delivered twice
    webhook_delay: float = 0.0  # seconds before each delivery
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self.rng.seed(self.seed)

    def _roll(self, share: float) -> bool:
        return share > 0 and self.rng.random() < share

    def api_fault(self) -> ApiFault:
        if self._roll(self.rate_limit_share):
            return "rate_limited"
        if self._roll(self.error_share):
            return "error"
        if self._roll(self.error_after_effect_share):
            return "error_after_effect"
        return "none"

    def drop_webhook(self) -> bool:
        return self._roll(self.webhook_drop_share)

    def duplicate_webhook(self) -> bool:
        return self._roll(self.webhook_duplicate_share)

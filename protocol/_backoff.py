"""How long to wait before the next reconnect: capped exponential backoff with jitter.

One policy for every program that reconnects (the edge agent to its broker, each cloud replica
to its broker), so a fleet and its cloud come back the same way after a broker restart.

A fleet that lost its broker must not come back in lockstep: each delay is drawn between half
and all of ``min(cap, base * 2**attempt)`` ("equal jitter"), so it never collapses to zero either.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["reconnect_delay"]

# 2**32 seconds is far beyond any cap; stopping there keeps the float finite for any attempt.
_MAX_EXPONENT = 32


def reconnect_delay(
    attempt: int, *, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before reconnect number ``attempt`` (0 for the first)."""
    ceiling = min(cap, base * (1 << min(max(attempt, 0), _MAX_EXPONENT)))
    return ceiling / 2 + rng() * ceiling / 2

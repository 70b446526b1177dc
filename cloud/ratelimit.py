"""Token buckets keyed by a string (a machine id, a status token): pure, no I/O, no clock.

Time is an argument (``now``, seconds on any monotonic-enough scale), as in the protocol
cores: the caller reads its clock, tests step a float. Each key has a bucket of ``burst``
tokens refilled at ``per_minute``; a request takes one token or is refused with the seconds
until one is back. Memory is bounded: at most ``max_keys`` buckets, the least recently used
dropped first. Dropping a bucket only forgets a debt (the key starts full again), so the bound
can make the limiter more lenient, never stricter.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

# Float slack when a refill lands exactly on a whole token (``retry_after`` later, say).
_EPSILON = 1e-6


@dataclass(frozen=True)
class Rate:
    """``burst`` requests at once, then ``per_minute`` on average."""

    burst: int
    per_minute: float

    def __post_init__(self) -> None:
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst}")
        if not self.per_minute > 0:
            raise ValueError(f"per_minute must be positive, got {self.per_minute}")

    def refill(self, seconds: float) -> float:
        """Tokens earned in ``seconds``."""
        return seconds * self.per_minute / 60.0

    def seconds_for(self, tokens: float) -> float:
        """Seconds it takes to earn ``tokens``."""
        return tokens * 60.0 / self.per_minute


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    # Seconds until a request with this key would be allowed (0 when this one was).
    retry_after: float = 0.0


class TokenBuckets:
    """One token bucket per key, at most ``max_keys`` of them (LRU)."""

    def __init__(self, rate: Rate, max_keys: int = 10_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.rate = rate
        self.max_keys = max_keys
        # key -> (tokens left, when they were counted); most recently used last.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: object) -> bool:
        return key in self._buckets

    def tokens(self, key: str, now: float) -> float:
        """Tokens ``key`` has at ``now`` (a key never seen, or forgotten, has a full bucket)."""
        return self._level(key, now)

    def take(self, key: str, now: float) -> Verdict:
        """Spend one of ``key``'s tokens at ``now``, or say how long until there is one."""
        tokens = self._level(key, now)
        if tokens >= 1.0 - _EPSILON:
            tokens, verdict = max(0.0, tokens - 1.0), Verdict(allowed=True)
        else:
            verdict = Verdict(allowed=False, retry_after=self.rate.seconds_for(1.0 - tokens))
        self._buckets.pop(key, None)
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return verdict

    def _level(self, key: str, now: float) -> float:
        burst = float(self.rate.burst)
        tokens, at = self._buckets.get(key, (burst, now))
        # A clock that went back earns nothing (and the bucket restarts from ``now``).
        elapsed = max(0.0, now - at)
        return min(burst, tokens + self.rate.refill(elapsed))

"""Rate limits on the customer routes: scans per machine, status page polls per token.

The buckets live in this replica's memory (the one ``CustomerLimits`` the app builds): they protect
against abuse, they are not a contract, so each replica limits on its own (behind a load
balancer the effective limit is the setting times the replicas a client reaches). Nothing
here is needed by another replica, and losing it on restart only forgives debts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from vendgate.cloud.errors import NotFound, RateLimited
from vendgate.cloud.machines import Offer
from vendgate.cloud.ratelimit import Rate, TokenBuckets
from vendgate.cloud.settings import RateLimitSettings

# Status tokens are 32 characters (24 random bytes); a longer one cannot exist, and keying a
# bucket by it would let a client spend our memory on long URLs.
MAX_TOKEN_LENGTH = 64


@dataclass
class CustomerLimits:
    """The customer routes' buckets; ``None`` where a limit is turned off (burst 0)."""

    scans: TokenBuckets | None
    status: TokenBuckets | None
    # Buckets count seconds from the first request seen: small floats, exact to the
    # microsecond (a Unix timestamp as a float is only good to about 0.2 µs).
    origin: datetime | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: RateLimitSettings) -> CustomerLimits:
        def buckets(burst: int, per_minute: float) -> TokenBuckets | None:
            if burst <= 0:
                return None
            return TokenBuckets(Rate(burst, per_minute), max_keys=settings.max_keys)

        return cls(
            scans=buckets(settings.scan_burst, settings.scan_per_minute),
            status=buckets(settings.status_burst, settings.status_per_minute),
        )

    def admit_scan(self, machine: Offer, now: datetime) -> None:
        """Count a scan of a known machine (unknown ids never reach here: no state for them)."""
        if self.scans is not None:
            verdict = self.scans.take(machine.id, self._seconds(now))
            if not verdict.allowed:
                raise RateLimited(verdict.retry_after, machine.name)

    def admit_status(self, token: str, now: datetime) -> None:
        """Count a status page or JSON request, before the database is read."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise NotFound("no such purchase")
        if self.status is not None:
            verdict = self.status.take(token, self._seconds(now))
            if not verdict.allowed:
                raise RateLimited(verdict.retry_after)

    def _seconds(self, now: datetime) -> float:
        if self.origin is None:
            self.origin = now
        return (now - self.origin) / timedelta(seconds=1)

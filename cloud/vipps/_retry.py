"""Retry with exponential backoff and full jitter, honouring ``Retry-After``.

Which failures are worth another attempt depends on whether repeating the request is safe:
a request carrying an ``Idempotency-Key`` (or a GET, PUT, DELETE) may be repeated after any
retryable failure; a plain POST only after answers that prove nothing was done (429, 423).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from vendgate.protocol import Clock

from ._errors import (
    VippsTimeoutError,
    VippsTransportError,
    error_from_response,
    is_retryable_status,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

# 429 and 423 mean "not processed, come back later": safe to repeat even without a key.
NOT_PROCESSED_STATUSES = frozenset({423, 429})


@dataclass
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0
    # Retry-After longer than this is not waited for; the error goes to the caller instead.
    max_retry_after: float = 30.0
    sleep: Sleep = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**attempt)]."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return self.rng.uniform(0, ceiling)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, of unknown origin
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


async def send_with_retry(
    send: Callable[[], Awaitable[httpx.Response]],
    policy: RetryPolicy,
    *,
    repeatable: bool,
    clock: Clock,
) -> httpx.Response:
    """Call ``send`` until it returns a non-retryable response; raise when attempts run out.

    Returns 2xx and 4xx responses alike: the caller decides what a 4xx means.
    """
    attempt = 0
    while True:
        attempt += 1
        last = attempt >= policy.max_attempts
        try:
            response = await send()
        except httpx.TransportError as exc:
            if last or not repeatable:
                raise _transport_error(exc) from exc
            delay = policy.backoff(attempt)
            log.warning("vipps: %s, retry %d in %.2fs", type(exc).__name__, attempt, delay)
            await policy.sleep(delay)
            continue
        if not _should_retry(response.status_code, repeatable):
            return response
        retry_after = parse_retry_after(response.headers.get("Retry-After"), clock.now())
        if last or (retry_after is not None and retry_after > policy.max_retry_after):
            raise error_from_response(response, retry_after)
        delay = max(retry_after or 0.0, policy.backoff(attempt))
        log.warning("vipps: HTTP %d, retry %d in %.2fs", response.status_code, attempt, delay)
        await policy.sleep(delay)


def _should_retry(status: int, repeatable: bool) -> bool:
    if repeatable:
        return is_retryable_status(status)
    return status in NOT_PROCESSED_STATUSES


def _transport_error(exc: httpx.TransportError) -> VippsTransportError:
    if isinstance(exc, httpx.TimeoutException):
        return VippsTimeoutError(f"timed out: {exc!r}")
    return VippsTransportError(f"no response: {exc!r}")

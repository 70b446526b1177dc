"""The one clock of vendgate: wall time for records and deadlines, monotonic time for intervals.

Every program takes a ``Clock`` from whoever builds it (the CLI passes ``SystemClock()``), so a
test or a simulation steers time by passing a ``ManualClock`` instead of patching anything. Wall
time is always an aware UTC ``datetime``; code that needs epoch seconds (HTTP dates, signatures,
token expiry) asks ``now().timestamp()``; code that measures an interval (uptime, a retry budget)
asks ``monotonic()``, which never goes back when the wall clock is stepped.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The wall time, as an aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never go back (for intervals only)."""
        ...


class SystemClock:
    """The machine's own clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to: ``advance``, or ``sleep`` as a fake sleep.

    Both readings move together, so a deadline (wall) and an interval (monotonic) agree.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (start or datetime.now(UTC)).astimezone(UTC)
        self._monotonic = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds

    def set(self, when: datetime) -> None:
        """Jump the wall time (a stepped NTP clock); monotonic time moves by the same amount."""
        self.advance((when.astimezone(UTC) - self._now).total_seconds())

    async def sleep(self, seconds: float) -> None:
        """A sleep that returns at once, having moved the clock (and noted how long)."""
        self.sleeps.append(seconds)
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)

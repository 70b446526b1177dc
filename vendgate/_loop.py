"""The event loop the long-running servers run on: uvloop where it is installed.

``vendgate cloud serve`` (and the Vipps simulator) spend much of their CPU in the event loop
itself: socket reads and writes for PostgreSQL, MQTT, HTTP in and out. uvloop (libuv, by the
authors of asyncpg) does that work in C; measured in benchmarks/bench_cloud.py (README). It
is a dependency on Linux and macOS; elsewhere the standard loop runs the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on uvloop when it can be imported."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)

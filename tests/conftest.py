"""Fixtures for the three test tiers (see docs/testing.md).

- pure: no fixture from here; codecs and state machines with a fake clock.
- embedded (marker ``amqtt``): ``amqtt_broker``, the in-process broker on a free port.
- production-shaped (markers ``mosquitto`` and ``postgres``): ``mosquitto`` runs the real binary
  with the repo's config; ``postgres_url`` is a throwaway database for the whole run.

A test using one of these fixtures is marked with its tier automatically.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
from support.mosquitto import Mosquitto, running
from support.postgres import create_database, drop_database
from support.tiers import TIERS, required_tiers, unavailable

from vendgate.broker import EmbeddedBroker

FIXTURE_TIERS = {"amqtt_broker": "amqtt", "mosquitto": "mosquitto", "postgres_url": "postgres"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, tier in FIXTURE_TIERS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(tier)


@pytest.fixture
async def amqtt_broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    with running() as broker:
        yield broker


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    try:
        name, url = create_database()
    except (OSError, Exception) as exc:  # asyncpg raises its own tree for auth/db errors
        unavailable("postgres", f"cannot create a database ({type(exc).__name__}: {exc})")
    try:
        yield url
    finally:
        drop_database(name)


# --- tier accounting: CI fails when a required tier ran no test --------------------------------

_passed_by_tier: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        for tier in TIERS:
            if tier in report.keywords:
                _passed_by_tier[tier] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts = ", ".join(f"{tier} {_passed_by_tier[tier]} passed" for tier in TIERS)
    terminalreporter.write_line(f"vendgate tiers: {counts}")
    missing = [t for t in sorted(required_tiers()) if _passed_by_tier[t] == 0]
    if missing:
        terminalreporter.write_line(f"required tiers that ran no test: {', '.join(missing)}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    selected_everything = not session.config.getoption("markexpr") and not os.environ.get(
        "PYTEST_XDIST_WORKER"
    )
    missing = [t for t in required_tiers() if _passed_by_tier[t] == 0]
    if missing and selected_everything and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

"""``BoardSim`` reads time only from the ``vendgate.protocol.Clock`` it is given."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from vendgate.boardsim import BoardSim
from vendgate.protocol import ManualClock

pytestmark = pytest.mark.pty

WAIT_S = 5.0


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


async def test_the_capture_offsets_are_the_given_clocks(tmp_path: Path) -> None:
    clock = ManualClock()
    capture = tmp_path / "bus.log"
    async with BoardSim(capture=capture, clock=clock) as sim, asyncio.timeout(WAIT_S):
        await sim.wait_until(lambda: len(lines_of(capture)) >= 1)
        # The clock moves before the next await: RESET's reply timer has not fired yet.
        clock.advance(2.5)
        # Nobody answers: the VMC repeats RESET when that timer fires, at the clock's time.
        await sim.wait_until(lambda: len(lines_of(capture)) >= 2)
        reset, repeat = lines_of(capture)[:2]

    assert reset.startswith("VMC 10*")
    assert reset.endswith("# +0.000s")
    assert repeat.startswith("VMC 10*")
    assert repeat.endswith("# +2.500s")

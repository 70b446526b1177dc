"""End to end over a real pseudo-terminal: ``BoardSim`` (the VMC) and ``SerialCashless``.

The edge side opens the pty path exactly as it would open a serial adapter; both sides run on
the real clock with short timeouts so the whole file takes a few seconds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_mdb_pair_kit import TEST_SLOTS

from vendgate.boardsim import BoardSim, Machine, VmcConfig
from vendgate.cli import main as vendgate
from vendgate.edge.cashless import (
    ApprovalSent,
    BoardReset,
    CashlessConfig,
    DenialSent,
    LinkLost,
    LinkRestored,
    ReaderEnabled,
    ReaderEvent,
    SerialCashless,
    SessionEnded,
    SessionStarted,
    VendFailed,
    VendRequested,
    VendSucceeded,
)
from vendgate.protocol.mqtt import EndReason

pytestmark = pytest.mark.pty

WAIT_S = 5.0


@dataclass
class Bench:
    sim: BoardSim
    reader: SerialCashless
    capture: Path
    events: list[ReaderEvent] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def listen(self) -> None:
        async for event in self.reader.events():
            self.events.append(event)
            self._changed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def event(self, wanted: ReaderEvent) -> None:
        await self.until(lambda: wanted in self.events)

    async def begin(self, funds: int) -> None:
        self.events.clear()
        self.reader.begin_session(funds)
        async with asyncio.timeout(WAIT_S):
            await self.sim.wait_session()


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    # Short, but with room for a loaded machine: a stalled loop must not end a session.
    vmc_config = VmcConfig(poll_interval_s=0.05, response_timeout_s=0.25, dispense_s=0.1)
    reader_config = CashlessConfig(selection_timeout_s=WAIT_S, link_lost_after_s=1.0)
    capture = tmp_path / "bus.log"
    async with BoardSim(Machine(TEST_SLOTS), vmc_config, capture=capture) as sim:
        async with SerialCashless(sim.device_path, reader_config) as reader:
            bench = Bench(sim, reader, capture)
            listener = asyncio.create_task(bench.listen())
            async with asyncio.timeout(WAIT_S):
                await sim.wait_ready()
            await bench.until(lambda: reader.can_begin_session)
            yield bench
        await listener  # the events iterator ends with the `async with`


async def test_a_vend_within_credit_succeeds_and_ends_the_session(bench: Bench) -> None:
    await bench.begin(2500)
    outcome = await asyncio.wait_for(bench.sim.select(1), WAIT_S)  # Cola, item 101, 2000
    assert (outcome.result, outcome.item, outcome.price) == ("success", 101, 2000)
    await bench.event(SessionEnded(EndReason.COMPLETED))
    assert bench.events == [
        SessionStarted(2500),
        VendRequested(2000, 101),
        ApprovalSent(2000, 101, 2000),
        VendSucceeded(item=101, price=2000, vmc_price=2000),
        SessionEnded(EndReason.COMPLETED),
    ]
    # The reader's event comes when it queues END SESSION; the VMC records it when it reads it.
    async with asyncio.timeout(WAIT_S):
        await bench.sim.wait_no_session()
    assert "CD 07 07*" in bench.capture.read_text()  # END SESSION went out
    assert bench.reader.state == "enabled"


async def test_an_item_over_the_credit_is_denied(bench: Bench) -> None:
    await bench.begin(2500)
    outcome = await asyncio.wait_for(bench.sim.select(3), WAIT_S)  # Sandwich 3000
    assert outcome.result == "denied"
    await bench.event(SessionEnded(EndReason.COMPLETED))
    assert DenialSent(3000, 103, "exceeds_credit") in bench.events
    assert bench.sim.machine.dispensed == []


async def test_a_jammed_motor_reports_vend_failed(bench: Bench) -> None:
    await bench.begin(2500)
    bench.sim.jam(1)
    outcome = await asyncio.wait_for(bench.sim.select(1), WAIT_S)
    assert outcome.result == "failure"
    await bench.event(SessionEnded(EndReason.COMPLETED))
    assert VendFailed(101, 2000, 2000) in bench.events
    assert not any(isinstance(e, VendSucceeded) for e in bench.events)


async def test_no_selection_ends_the_session_by_timeout(bench: Bench) -> None:
    bench.reader.set_selection_timeout(0.5)
    await bench.begin(2500)
    bench.sim.walk_away()
    await bench.event(SessionEnded(EndReason.TIMEOUT))
    async with asyncio.timeout(WAIT_S):
        await bench.sim.wait_no_session()
    assert bench.events == [SessionStarted(2500), SessionEnded(EndReason.TIMEOUT)]
    assert bench.reader.can_begin_session


async def test_a_silent_board_is_reported_and_recovered(bench: Bench) -> None:
    bench.events.clear()
    bench.sim.power_cycle(1.5)
    await bench.event(LinkLost())
    assert bench.reader.link_up is False
    assert bench.reader.can_begin_session is False
    await bench.event(ReaderEnabled())
    assert bench.events == [LinkLost(), LinkRestored(), BoardReset(), ReaderEnabled()]
    assert bench.reader.can_begin_session


async def test_the_capture_decodes_with_all_checksums_ok(
    bench: Bench, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await bench.begin(2500)
    await asyncio.wait_for(bench.sim.select(2), WAIT_S)
    await bench.event(SessionEnded(EndReason.COMPLETED))
    async with asyncio.timeout(WAIT_S):
        await bench.sim.wait_no_session()
    # The bus keeps polling, so the live capture grows: decode and count one snapshot of it.
    snapshot = tmp_path / "snapshot.log"
    lines = bench.capture.read_text().splitlines(keepends=True)
    snapshot.write_text("".join(line for line in lines if line.endswith("\n")))
    capsys.readouterr()
    assert vendgate(["mdb", "decode", str(snapshot)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == len(snapshot.read_text().splitlines()) > 20
    assert all(record.get("checksum_ok") is True for record in records)
    names = {m["name"] for record in records for m in record["messages"]}
    assert {"RESET", "SETUP_CONFIG", "BEGIN_SESSION", "VEND_APPROVED", "END_SESSION"} <= names

"""Shared by the ``test_mdb_pair_*`` files: the reader and the VMC back to back, in memory.

``Pair`` is h11's pair helper with aioquic's time: one fake clock, stepped from deadline to
deadline, never slept. Bytes travel framed (``docs/mdb-link.md``) through ``Faults``, a null
modem (pymodbus) that can drop or duplicate whole blocks, drop or corrupt bytes, add noise and
split what it carries into arbitrary chunks. The VMC's trace records every block it sent or
received intact, in ``vendgate mdb decode`` capture lines.

This file holds no tests; pytest collects it and finds none.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from vendgate.boardsim import Machine, Slot, Vmc, VmcConfig, VmcEvent
from vendgate.edge.cashless import CashlessConfig, NeedData, Reader, ReaderEvent
from vendgate.protocol import mdb

# Item numbers differ from slot numbers on purpose: the item must travel, not the selection.
TEST_SLOTS = (
    Slot(1, 101, "Cola", 2000),
    Slot(2, 102, "Water", 1500),
    Slot(3, 103, "Sandwich", 3000),
    Slot(4, 104, "Crisps", 500),
)
IDLE_POLL = ("VMC 12* 12", "CD 00*")


@dataclass
class Faults:
    """What the wire does to the bytes it carries, one direction."""

    rng: random.Random = field(default_factory=lambda: random.Random(0))
    drop_block: float = 0.0
    duplicate_block: float = 0.0
    drop_byte: float = 0.0
    corrupt_byte: float = 0.0
    noise: float = 0.0
    split: bool = False
    down: bool = False
    """The line is cut: nothing gets through."""
    drop_once: list[str] = field(default_factory=list)
    """Capture lines of blocks to lose, each the first time it passes."""

    def carry(self, blocks: Iterable[mdb.Block]) -> list[bytes]:
        if self.down:
            return []
        stream = b"".join(self._frame(block) for block in self._blocks(blocks))
        return self._chunks(self._bytes(stream))

    def _blocks(self, blocks: Iterable[mdb.Block]) -> list[mdb.Block]:
        out: list[mdb.Block] = []
        for block in blocks:
            line = mdb.format_capture_line(block.direction, block.words)
            if line in self.drop_once:
                self.drop_once.remove(line)
                continue
            if self.rng.random() < self.drop_block:
                continue
            out.append(block)
            if self.rng.random() < self.duplicate_block:
                out.append(block)
        return out

    def _frame(self, block: mdb.Block) -> bytes:
        frame = mdb.encode_frame(block)
        if self.rng.random() < self.noise:
            junk = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 6)))
            frame = junk + frame
        return frame

    def _bytes(self, stream: bytes) -> bytes:
        out = bytearray()
        for byte in stream:
            if self.rng.random() < self.drop_byte:
                continue
            if self.rng.random() < self.corrupt_byte:
                byte ^= 1 << self.rng.randrange(8)
            out.append(byte)
        return bytes(out)

    def _chunks(self, data: bytes) -> list[bytes]:
        if not self.split or len(data) < 2:
            return [data] if data else []
        cuts = sorted(self.rng.sample(range(1, len(data)), k=min(3, len(data) - 1)))
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


class Pair:
    """A reader and a VMC joined by two ``Faults`` lines, on a fake clock."""

    def __init__(
        self,
        *,
        reader_config: CashlessConfig | None = None,
        vmc_config: VmcConfig | None = None,
        machine: Machine | None = None,
        to_reader: Faults | None = None,
        to_vmc: Faults | None = None,
    ) -> None:
        self.now = 0.0
        self.trace: list[str] = []
        self.reader = Reader(reader_config or CashlessConfig())
        self.machine = machine if machine is not None else Machine(TEST_SLOTS)
        self.vmc = Vmc(self.machine, vmc_config or VmcConfig(), trace=self._record)
        self.to_reader = to_reader or Faults()
        self.to_vmc = to_vmc or Faults()
        self.reader_events: list[ReaderEvent] = []
        self.vmc_events: list[VmcEvent] = []

    def _record(self, block: mdb.Block) -> None:
        self.trace.append(mdb.format_capture_line(block.direction, block.words))

    def run_until(self, until: float) -> None:
        """Step the clock from deadline to deadline up to ``until``, exchanging all bytes."""
        self.exchange()
        while (deadline := self._next_deadline()) is not None and deadline <= until:
            self.now = max(self.now, deadline)
            self.vmc.handle_timer(self.now)
            self.reader.handle_timer(self.now)
            self.exchange()
        self.now = max(self.now, until)
        self.exchange()

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def exchange(self) -> None:
        """Carry bytes both ways until both sides are quiet at this instant."""
        for _ in range(100):
            to_reader = self.to_reader.carry(self.vmc.blocks_to_send())
            for chunk in to_reader:
                self.reader.receive_data(chunk, self.now)
            to_vmc = self.to_vmc.carry(self.reader.blocks_to_send())
            for chunk in to_vmc:
                self.vmc.receive_data(chunk, self.now)
            self._collect()
            if not to_reader and not to_vmc:
                return
        raise AssertionError("the two sides never stop talking")

    def _collect(self) -> None:
        while not isinstance(event := self.reader.next_event(), NeedData):
            self.reader_events.append(event)
        while (vmc_event := self.vmc.next_event()) is not None:
            self.vmc_events.append(vmc_event)

    def _next_deadline(self) -> float | None:
        deadlines = [self.vmc.next_deadline(), self.reader.next_deadline()]
        return min((d for d in deadlines if d is not None), default=None)

    # --- conveniences for scenarios ------------------------------------------------------------

    def start(self) -> None:
        """Power up and run until the VMC has initialised and enabled the reader."""
        self.run_until(2.0)
        assert self.vmc.ready, self.vmc.phase
        assert self.reader.state == "enabled", self.reader.state

    def open_session(self, funds: int) -> None:
        self.reader.begin_session(funds, self.now)
        self.run_for(0.5)
        assert self.vmc.funds is not None, "BEGIN SESSION never reached the VMC"

    def take_trace(self, *, drop_idle_polls: bool = True) -> list[str]:
        """The capture lines since the last call, without POLL/ACK pairs that say nothing."""
        lines, self.trace = self.trace, []
        if not drop_idle_polls:
            return lines
        out: list[str] = []
        for line in lines:
            if out and (out[-1], line) == IDLE_POLL:
                out.pop()
            else:
                out.append(line)
        return out

    def take_reader_events(self) -> list[ReaderEvent]:
        events, self.reader_events = self.reader_events, []
        return events

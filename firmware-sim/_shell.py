"""The board on a pseudo-terminal: the async shell around the pure ``Vmc``.

``BoardSim`` opens a pty pair, keeps the slave end open (so the master never sees EIO while no
edge is attached) and set to raw mode, and drives the VMC from the master end: read, feed,
write, arm one timer. The edge opens ``device_path``. Every bus block, both ways, is appended
to the capture file in the ``vendgate mdb decode`` format. The keypad is a Python API (below)
and the line protocol of ``_keypad`` on a TCP socket (``serve_control``) or stdin
(``serve_stdin``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import tty
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

from vendgate.protocol import Clock, SystemClock, mdb

from . import _keypad
from ._machine import Machine, Slot, SlotError
from ._vmc import KeypadError, VendOutcome, Vmc, VmcConfig, VmcEvent

log = logging.getLogger(__name__)

READ_CHUNK = 4096
MIN_TIMER_DELAY_S = 0.0005


class BoardSim:
    """A vend board (VMC + machine) on a pty. Use one ``async with`` per object.

    Keypad: ``select(n)`` returns a future of the vend's ``VendOutcome`` (also ``last_vend``);
    ``walk_away()``, ``cancel()``, ``jam(n)``, ``power_cycle(seconds)``, ``status()``.
    Waiting (wrap in ``asyncio.timeout``): ``wait_ready()``, ``wait_session()``,
    ``wait_no_session()``, ``wait_until(condition)``.
    """

    def __init__(
        self,
        machine: Machine | None = None,
        config: VmcConfig | None = None,
        *,
        capture: Path | str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.machine = machine if machine is not None else Machine()
        self.config = config if config is not None else VmcConfig()
        self.capture_path = Path(capture) if capture is not None else None
        self.device_path = ""
        self.events: list[VmcEvent] = []
        self.last_vend: asyncio.Future[VendOutcome] | None = None
        self._clock = clock or SystemClock()
        self._started = self._clock.monotonic()
        self.vmc = Vmc(self.machine, self.config, now=self._started, trace=self._capture)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._master_fd = self._slave_fd = -1
        self._capture_file: TextIO | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._master_fd, self._slave_fd = os.openpty()
        tty.setraw(self._slave_fd)  # no echo, no ^C, no CR/LF games before the edge opens it
        os.set_blocking(self._master_fd, False)
        self.device_path = os.ttyname(self._slave_fd)
        if self.capture_path is not None:
            self._capture_file = self.capture_path.open("a", encoding="utf-8", buffering=1)
        self._loop.add_reader(self._master_fd, self._on_readable)
        self._after_input()
        log.info("vend board on %s", self.device_path)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._loop is not None and self._master_fd >= 0:
            self._loop.remove_reader(self._master_fd)
        for fd in (self._master_fd, self._slave_fd):
            if fd >= 0:
                os.close(fd)
        self._master_fd = self._slave_fd = -1
        if self._capture_file is not None:
            self._capture_file.close()
        if self.last_vend is not None and not self.last_vend.done():
            self.last_vend.cancel()

    # --- the keypad (also the target of the line protocol) -------------------------------------

    def select(self, number: int) -> asyncio.Future[VendOutcome]:
        """Press selection ``number``; ``KeypadError`` if the machine refuses."""
        self.vmc.select(number, self._clock.monotonic())
        self.last_vend = self._running_loop().create_future()
        self._after_input()
        return self.last_vend

    def walk_away(self) -> None:
        self.vmc.walk_away()

    def cancel(self) -> None:
        self.vmc.cancel(self._clock.monotonic())
        self._after_input()

    def jam(self, number: int) -> Slot:
        return self.vmc.jam(number)

    def power_cycle(self, off_s: float | None = None) -> float:
        seconds = self.config.power_off_s if off_s is None else off_s
        self.vmc.power_cycle(self._clock.monotonic(), seconds)
        self._after_input()
        return seconds

    def status(self) -> str:
        return self.vmc.status_line()

    def slot(self, number: int) -> Slot:
        try:
            return self.machine.slot(number)
        except SlotError as exc:
            raise KeypadError(str(exc)) from None

    def answer_line(self, line: str) -> str | None:
        """One control-protocol line in, its one answer line out (None for a blank line)."""
        return _keypad.answer(line, self)

    # --- waiting for the board -----------------------------------------------------------------

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Until ``condition()`` holds, checked after every bus event (wrap in a timeout)."""
        while not condition():
            changed = self._changed
            await changed.wait()

    async def wait_ready(self) -> None:
        await self.wait_until(lambda: self.vmc.ready)

    async def wait_session(self) -> None:
        """Until BEGIN SESSION reached the VMC (the customer sees credit)."""
        await self.wait_until(lambda: self.vmc.funds is not None)

    async def wait_no_session(self) -> None:
        await self.wait_until(lambda: self.vmc.funds is None)

    # --- the pty -------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master_fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # EIO: nobody on the other end
            log.debug("pty read: %s", exc)
            return
        self.vmc.receive_data(data, self._clock.monotonic())
        self._after_input()

    def _on_timer(self) -> None:
        self._timer = None
        self.vmc.handle_timer(self._clock.monotonic())
        self._after_input()

    def _after_input(self) -> None:
        self._write(self.vmc.data_to_send(self._clock.monotonic()))
        while (event := self.vmc.next_event()) is not None:
            self._dispatch(event)
        self._arm_timer()
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _write(self, data: bytes) -> None:
        if not data or self._master_fd < 0:
            return
        try:
            os.write(self._master_fd, data)
        except (BlockingIOError, InterruptedError):
            log.debug("pty full (is anyone reading %s?); block dropped", self.device_path)

    def _dispatch(self, event: VmcEvent) -> None:
        self.events.append(event)
        if isinstance(event, VendOutcome) and self.last_vend and not self.last_vend.done():
            self.last_vend.set_result(event)

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.vmc.next_deadline()
        if deadline is None or self._loop is None or self._master_fd < 0:
            return
        delay = max(deadline - self._clock.monotonic(), MIN_TIMER_DELAY_S)
        self._timer = self._loop.call_later(delay, self._on_timer)

    def _capture(self, block: mdb.Block) -> None:
        if self._capture_file is None:
            return
        line = mdb.format_capture_line(block.direction, block.words)
        elapsed = self._clock.monotonic() - self._started
        self._capture_file.write(f"{line:<40} # +{elapsed:.3f}s\n")

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("use BoardSim inside `async with`")
        return self._loop


# --- the control line protocol on a socket or on stdin --------------------------------------------


class ControlServer:
    """The keypad protocol on TCP: the listening socket plus one task per open connection.

    ``async with`` it (or ``close()`` then ``await wait_closed()``): closing stops listening,
    cancels every session and waits for them, so each connection's writer is closed before
    the loop goes away. The session tasks are ours, not the stream protocol's: asyncio 3.11
    logs a traceback for a cancelled ``client_connected_cb`` coroutine.
    """

    def __init__(self, sim: BoardSim) -> None:
        self._sim = sim
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self, host: str, port: int) -> Self:
        self._server = await asyncio.start_server(self._accept, host, port)
        return self

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return self._server.sockets if self._server is not None else ()

    def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task in self._sessions:
            task.cancel()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()
        if self._sessions:
            await asyncio.wait(set(self._sessions))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            writer.close()
            return
        task = asyncio.create_task(self._session(reader, writer))
        self._sessions.add(task)
        task.add_done_callback(self._session_done)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                reply = self._sim.answer_line(line.decode("utf-8", "replace"))
                if reply is not None:
                    writer.write(reply.encode() + b"\n")
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _session_done(self, task: asyncio.Task[None]) -> None:
        self._sessions.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("control session failed", exc_info=exc)


async def serve_control(sim: BoardSim, host: str, port: int) -> ControlServer:
    """Listen for keypad lines on TCP ``host:port`` (one answer line per command)."""
    return await ControlServer(sim).start(host, port)


async def serve_stdin(sim: BoardSim, out: TextIO = sys.stdout) -> None:
    """Answer keypad lines read from stdin on ``out`` until end of input."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except ValueError:  # a regular file: read it whole, it cannot block for long
        for line in sys.stdin:
            _answer_to(sim, line, out)
        return
    while line := await reader.readline():
        _answer_to(sim, line.decode("utf-8", "replace"), out)


def _answer_to(sim: BoardSim, line: str, out: TextIO) -> None:
    reply = sim.answer_line(line)
    if reply is not None:
        print(reply, file=out, flush=True)

"""The serial shell: holds the port and reads the clock; the ``Reader`` does all the thinking.

Per input it does four things, in this order and without awaiting anything: feed the bytes,
write the reply at once (MDB timing leaves no room for a network round trip), move the reader's
events to the queue, arm the one timer at ``next_deadline``.

Reading: ``loop.add_reader`` on the port's file descriptor (a tty, a pty) with a non-blocking
port; URLs without one (``loop://``, some ``socket://``) are polled by a small task. A port
that fails (unplugged adapter, closed pty) is closed and reopened every second; meanwhile the
reader's own timer reports ``LinkLost``, and ``LinkRestored`` comes with the next valid block.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Self

import serial

from vendgate.protocol import Clock, SystemClock

from ._config import CashlessConfig
from ._events import NeedData, PriceMode, ReaderEvent
from ._reader import Reader

log = logging.getLogger(__name__)

READ_CHUNK = 4096
POLL_PORT_EVERY_S = 0.001
REOPEN_EVERY_S = 1.0
MIN_TIMER_DELAY_S = 0.001  # a clock that lags the loop must not spin the timer


class SerialCashless:
    """The cashless device on a pyserial port (any ``serial_for_url`` URL or a pty path).

    The port is open inside ``async with``; the object may be entered again after it exits or
    failed to open (the reader's state carries over, as when a port is reopened). Events come
    from ``events()``, an async iterator for one consumer; it ends when the block exits.
    Amounts: ``begin_session`` takes minor units, events carry wire units (``config.to_minor``
    converts; the same numbers with the default config).
    """

    def __init__(
        self,
        port_url: str,
        config: CashlessConfig,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.port_url = port_url
        self.config = config
        self.reader = Reader(config)
        self._clock = clock or SystemClock()
        self._queue: asyncio.Queue[ReaderEvent | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port: serial.SerialBase | None = None
        self._fd: int | None = None
        self._poller: asyncio.Task[None] | None = None
        self._reopener: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._queue = asyncio.Queue()
        self._open_port()  # OSError (SerialException) when the port cannot be opened
        self._arm_timer()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for task in (self._reopener, self._poller):
            if task is not None:
                task.cancel()
        self._close_port()
        self._queue.put_nowait(None)

    # --- the contract --------------------------------------------------------------------------

    def begin_session(self, funds: int) -> None:
        """Offer ``funds`` minor units; ``LocalMdbError`` unless ``can_begin_session``."""
        self.reader.begin_session(funds, self._clock.monotonic())
        self._after_input()

    def cancel_session(self) -> None:
        """Ask the VMC to end the session (after the vend under way); no-op without one."""
        self.reader.cancel_session()
        self._after_input()

    @property
    def state(self) -> str:
        return self.reader.state

    @property
    def link_up(self) -> bool:
        return self.reader.link_up

    @property
    def can_begin_session(self) -> bool:
        return self.reader.can_begin_session

    def set_selection_timeout(self, seconds: float) -> None:
        self.reader.set_selection_timeout(seconds)
        self._arm_timer()

    def set_pricing(self, mode: PriceMode, planogram: Mapping[int, int] | None) -> None:
        """Who prices the next vend (``Reader.set_pricing``); planogram prices in minor units."""
        self.reader.set_pricing(mode, planogram)

    async def events(self) -> AsyncIterator[ReaderEvent]:
        """Every reader event, in order, until the ``async with`` block exits."""
        while not (self._closed and self._queue.empty()):
            event = await self._queue.get()
            if event is None:
                return
            yield event

    # --- the port ------------------------------------------------------------------------------

    def _open_port(self) -> None:
        port = serial.serial_for_url(self.port_url, timeout=0)
        self._port = port
        self._fd = _fileno(port)
        loop = self._running_loop()
        if self._fd is not None:
            port.write_timeout = 0  # a full tty buffer must not stall the loop: drop instead
            loop.add_reader(self._fd, self._on_readable)
        else:
            self._poller = loop.create_task(self._poll_port(port))
        log.info("cashless device listening on %s", self.port_url)

    def _close_port(self) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
        self._fd = None
        if self._port is not None:
            self._port.close()
        self._port = None

    def _on_readable(self) -> None:
        if self._port is None:
            return
        try:
            data = self._port.read(READ_CHUNK)
        except OSError as exc:  # serial.SerialException is an OSError
            self._port_failed(exc)
            return
        if data:
            self._feed(data)

    async def _poll_port(self, port: serial.SerialBase) -> None:
        while True:
            try:
                data = port.read(READ_CHUNK)
            except OSError as exc:
                self._port_failed(exc)
                return
            if data:
                self._feed(data)
            await asyncio.sleep(POLL_PORT_EVERY_S)

    def _port_failed(self, exc: OSError) -> None:
        log.warning("serial port %s failed (%s); reopening", self.port_url, exc)
        self._close_port()
        if self._poller is not None and self._poller is not asyncio.current_task():
            self._poller.cancel()
        self._poller = None
        if not self._closed and self._reopener is None:
            self._reopener = self._running_loop().create_task(self._reopen())

    async def _reopen(self) -> None:
        try:
            while not self._closed:
                await asyncio.sleep(REOPEN_EVERY_S)
                try:
                    self._open_port()
                    return
                except OSError as exc:
                    log.debug("cannot reopen %s yet: %s", self.port_url, exc)
        finally:
            self._reopener = None

    def _write(self, data: bytes) -> None:
        if not data or self._port is None:
            return
        try:
            self._port.write(data)
        except serial.SerialTimeoutException:
            log.debug("reply dropped: %s does not drain", self.port_url)  # the VMC will repeat
        except OSError as exc:
            self._port_failed(exc)

    # --- feeding the reader --------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        self.reader.receive_data(data, self._clock.monotonic())
        self._after_input()

    def _on_timer(self) -> None:
        self._timer = None
        self.reader.handle_timer(self._clock.monotonic())
        self._after_input()

    def _after_input(self) -> None:
        self._write(self.reader.data_to_send(self._clock.monotonic()))
        while not isinstance(event := self.reader.next_event(), NeedData):
            self._queue.put_nowait(event)
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.reader.next_deadline()
        if deadline is None or self._closed or self._loop is None:
            return
        delay = max(deadline - self._clock.monotonic(), MIN_TIMER_DELAY_S)
        self._timer = self._loop.call_later(delay, self._on_timer)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("use SerialCashless inside `async with`")
        return self._loop


def _fileno(port: serial.SerialBase) -> int | None:
    try:
        return port.fileno()
    except (AttributeError, OSError, ValueError):
        return None

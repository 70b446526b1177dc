"""A whole vending machine as real processes: ``vendgate board-sim`` on a pty (its keypad over
TCP) and ``vendgate edge`` on that pty, for tests that put the real cloud in front of them.

``board_process()`` yields a ``BoardProcess`` (press keys, read its status line); ``start_edge``
starts the agent with the environment a machine's systemd unit would give it, and with
``log=LogLines()`` at DEBUG with its stderr followed, so a test can wait for what it logs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

VENDGATE = (sys.executable, "-m", "vendgate")


class BoardProcess:
    """A ``vendgate board-sim`` process and its keypad connection."""

    def __init__(self, process: asyncio.subprocess.Process, pty: str) -> None:
        self.process = process
        self.pty = pty
        self._keypad: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def connect_keypad(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self._keypad = await asyncio.open_connection(host, int(port))

    async def press(self, line: str) -> str:
        assert self._keypad is not None
        reader, writer = self._keypad
        writer.write(line.encode() + b"\n")
        await writer.drain()
        return (await reader.readline()).decode().strip()

    async def wait_status(self, *fragments: str, within_s: float = 20) -> str:
        """Ask ``status`` until its line holds every fragment; return that line."""
        async with asyncio.timeout(within_s):
            while True:
                line = await self.press("status")
                if all(fragment in line for fragment in fragments):
                    return line
                await asyncio.sleep(0.05)  # polling another process's state, not a wait for time

    async def buy(self, selection: int) -> None:
        """The customer sees the credit, then presses ``selection``."""
        await self.wait_status("credit=")
        answer = await self.press(f"select {selection}")
        assert answer.startswith("ok"), answer

    async def close_keypad(self) -> None:
        if self._keypad is not None:
            self._keypad[1].close()
            await self._keypad[1].wait_closed()
            self._keypad = None


@asynccontextmanager
async def board_process(*flags: str) -> AsyncIterator[BoardProcess]:
    """Fast polls; the built-in planogram (slot 1 Cola 25.00 ... slot 5 Sandwich 35.00) unless
    ``flags`` (more ``board-sim`` flags, e.g. ``--slot``) say otherwise."""
    process = await asyncio.create_subprocess_exec(
        *VENDGATE, "board-sim", "--control", "127.0.0.1:0", "--poll-interval", "0.05",
        "--dispense-time", "0.2", *flags, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            pty = (await process.stdout.readline()).decode().strip()
            control = (await process.stdout.readline()).decode().split()[-1]
        board = BoardProcess(process, pty)
        await board.connect_keypad(control)
        try:
            yield board
        finally:
            await board.close_keypad()
    finally:
        await stop(process)


def edge_env(
    url: str, machine_id: str, password: str, serial: str, data_dir: Path, **extra: str
) -> dict[str, str]:
    """The agent's configuration, by environment; ``extra`` adds ``VENDGATE_*`` settings."""
    return {
        **os.environ,
        "VENDGATE_MACHINE_ID": machine_id,
        "VENDGATE_MQTT_URL": url,
        "VENDGATE_MQTT_PASSWORD": password,
        "VENDGATE_SERIAL": serial,
        "VENDGATE_DATA_DIR": str(data_dir),
        **{f"VENDGATE_{name.upper()}": value for name, value in extra.items()},
    }


class LogLines:
    """Log lines as they come (a process's stderr, or a ``logging`` handler), to wait on."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._follower: asyncio.Task[None] | None = None

    def matches(self, *fragments: str, after: int = -1) -> list[int]:
        """Indexes of the lines after line ``after`` (all by default) holding every fragment."""
        found = enumerate(self.lines[after + 1 :], start=after + 1)
        return [i for i, line in found if all(fragment in line for fragment in fragments)]

    async def wait_for(
        self, *fragments: str, after: int = -1, count: int = 1, within_s: float = 20
    ) -> int:
        """Until ``count`` lines after line ``after`` hold every fragment; the last one's index."""
        try:
            async with asyncio.timeout(within_s):
                # polling: the lines come from another task, a thread or a process
                while len(found := self.matches(*fragments, after=after)) < count:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        except TimeoutError:
            seen = len(self.matches(*fragments, after=after))
            wanted = f"{count} lines with {fragments} after line {after}"
            raise AssertionError(f"{wanted}: {seen} in {within_s} s") from None
        return found[count - 1]

    def follow(self, stream: asyncio.StreamReader) -> None:
        """Read ``stream`` to its end in the background (also echoed to our stderr)."""

        async def read() -> None:
            while line := await stream.readline():
                text = line.decode(errors="replace").rstrip("\n")
                self.lines.append(text)
                print(text, file=sys.stderr)

        self._follower = asyncio.create_task(read())

    async def closed(self) -> None:
        """The followed stream has ended (its process exited)."""
        if self._follower is not None:
            await asyncio.wait_for(self._follower, 10)


class LogLinesHandler(logging.Handler):
    """Puts each record's message into ``log``: this process's own logger, waited on alike."""

    def __init__(self, log: LogLines) -> None:
        super().__init__(logging.DEBUG)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log.lines.append(record.getMessage())


async def start_edge(
    env: dict[str, str], log: LogLines | None = None
) -> asyncio.subprocess.Process:
    """``vendgate edge``; with ``log``, at DEBUG and its stderr followed into ``log``."""
    if log is None:
        return await asyncio.create_subprocess_exec(*VENDGATE, "edge", env=env)
    process = await asyncio.create_subprocess_exec(
        *VENDGATE, "--log-level", "DEBUG", "edge", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    log.follow(process.stderr)
    return process


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()

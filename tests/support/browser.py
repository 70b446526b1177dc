"""Headless Chromium driven over the DevTools protocol (CDP), for tests that need a real browser.

No browser-downloading package: Debian's ``chromium`` is started with a throwaway profile and
``--remote-debugging-port=0``; it prints ``DevTools listening on ws://...`` on stderr, and one
websocket (the ``websockets`` package) carries every command. A page is a target attached in
"flat" mode, so its commands travel on the same socket tagged with a ``sessionId``.

    async with chromium() as browser:
        page = await browser.new_page(PHONE)
        await page.navigate("http://127.0.0.1:8000/s/...")
        await page.wait_until("document.querySelector('#status').dataset.final === 'true'")
        await page.screenshot(Path("test-artifacts/status.png"))
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium")
STARTUP_LIMIT_S = 30.0
COMMAND_LIMIT_S = 15.0
LISTENING = "DevTools listening on "
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # tests may run as root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)


class BrowserError(Exception):
    """Chromium did not start, a CDP command failed, or a page's script threw."""


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int
    scale: float = 1.0
    mobile: bool = False


PHONE = Viewport(390, 844, scale=2.0, mobile=True)


class Cdp:
    """One DevTools websocket: numbered commands, each answered once; events are ignored."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = answer
        try:
            await self._socket.send(json.dumps(message))
            async with asyncio.timeout(COMMAND_LIMIT_S):
                return await answer
        finally:
            self._pending.pop(message_id, None)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._socket.close()

    async def _read(self) -> None:
        try:
            async for raw in self._socket:
                self._answer(json.loads(raw))
        finally:  # the browser went away: nobody waits forever
            for answer in self._pending.values():
                if not answer.done():
                    answer.set_exception(BrowserError("the DevTools connection closed"))

    def _answer(self, message: dict[str, Any]) -> None:
        answer = self._pending.get(message.get("id", -1))
        if answer is None or answer.done():
            return  # an event, or an answer nobody waits for any more
        if "error" in message:
            answer.set_exception(BrowserError(f"CDP error: {message['error']}"))
        else:
            answer.set_result(message.get("result", {}))


class Page:
    """One tab: navigate, evaluate JavaScript, wait for a condition, take screenshots."""

    def __init__(self, cdp: Cdp, session: str) -> None:
        self._cdp = cdp
        self._session = session

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._cdp.send(method, params, self._session)

    async def navigate(self, url: str, limit_s: float = COMMAND_LIMIT_S) -> None:
        """Open ``url`` and wait until its document has loaded."""
        result = await self.send("Page.navigate", {"url": url})
        if "errorText" in result:
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        await self.wait_until("document.readyState === 'complete'", limit_s)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited), as JSON data."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_until(
        self, expression: str, limit_s: float = COMMAND_LIMIT_S, every_s: float = 0.05
    ) -> None:
        """Until ``expression`` is truthy in the page; ``TimeoutError`` names it otherwise."""
        try:
            async with asyncio.timeout(limit_s):
                while not await self.evaluate(expression):  # noqa: ASYNC110 - no page event
                    await asyncio.sleep(every_s)
        except TimeoutError:
            raise TimeoutError(f"{expression!r} was not true within {limit_s} s") from None

    async def screenshot(self, path: Path) -> Path:
        """A PNG of the viewport, written to ``path`` (folders created)."""
        result = await self.send("Page.captureScreenshot", {"format": "png"})
        await asyncio.to_thread(_write, path, base64.b64decode(result["data"]))
        return path


class Browser:
    def __init__(self, cdp: Cdp) -> None:
        self._cdp = cdp

    async def new_page(self, viewport: Viewport | None = None) -> Page:
        target = await self._cdp.send("Target.createTarget", {"url": "about:blank"})
        attached = await self._cdp.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self._cdp, attached["sessionId"])
        await page.send("Page.enable")
        if viewport is not None:
            await page.send(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": viewport.width,
                    "height": viewport.height,
                    "deviceScaleFactor": viewport.scale,
                    "mobile": viewport.mobile,
                },
            )
        return page


@contextlib.asynccontextmanager
async def chromium(executable: str | None = CHROMIUM) -> AsyncIterator[Browser]:
    """A headless Chromium with a throwaway profile, stopped (and its profile removed) on exit."""
    if executable is None:
        raise BrowserError("no chromium on PATH (apt install chromium)")
    with tempfile.TemporaryDirectory(prefix="vendgate-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            executable,
            *FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        drain: asyncio.Task[None] | None = None
        try:
            url = await _devtools_url(process)
            drain = asyncio.create_task(_drain(process))  # a full pipe would stall chromium
            async with connect(url, max_size=None) as socket:
                cdp = Cdp(socket)
                try:
                    yield Browser(cdp)
                finally:
                    await cdp.close()
        finally:
            if drain is not None:
                drain.cancel()
            await _stop(process)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def _devtools_url(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(STARTUP_LIMIT_S):
            while line := (await process.stderr.readline()).decode(errors="replace"):
                if line.startswith(LISTENING):
                    return line[len(LISTENING) :].strip()
                seen.append(line)
    except TimeoutError:
        pass
    raise BrowserError("chromium printed no DevTools URL:\n" + "".join(seen[-20:]))


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stderr is not None
    while await process.stderr.read(65536):
        pass


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        async with asyncio.timeout(10):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()

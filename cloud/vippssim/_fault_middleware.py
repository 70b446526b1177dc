"""ASGI middleware that makes the merchant API slow or unreliable, as ``FaultSettings`` say.

Pages under ``/sim/`` (the customer's phone, controls) are never disturbed.
"""

from __future__ import annotations

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from ._simulator import VippsSimulator


def fault_injection(sim: VippsSimulator) -> type:
    """A Litestar-style middleware factory bound to ``sim``'s fault settings."""

    class FaultInjection:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or scope["path"].startswith("/sim/"):
                await self.app(scope, receive, send)
                return
            faults = sim.faults
            if faults.latency:
                await sim.sleep(faults.latency)
            fault = faults.api_fault()
            if fault == "rate_limited":
                await _rate_limited(send, faults.retry_after)
            elif fault == "error":
                await _server_error(send, scope["path"])
            elif fault == "error_after_effect":
                await self.app(scope, receive, _swallow)
                await _server_error(send, scope["path"])
            else:
                await self.app(scope, receive, send)

    return FaultInjection


async def _swallow(message: Message) -> None:
    """Discard the real answer: the effect happened but the client never hears of it."""


async def _rate_limited(send: Send, retry_after: int) -> None:
    body = msgspec.json.encode(
        {
            "statusCode": 429,
            "message": f"Rate limit is exceeded. Try again in {retry_after} seconds.",
        }
    )
    headers = [(b"content-type", b"application/json"), (b"retry-after", str(retry_after).encode())]
    await _send(send, 429, headers, body)


async def _server_error(send: Send, path: str) -> None:
    body = msgspec.json.encode(
        {
            "type": "https://httpstatuses.io/500",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "injected fault",
            "instance": path,
            "traceId": "sim-fault",
            "extraDetails": [{"name": "ErrorCode", "reason": "3010"}],
        }
    )
    await _send(send, 500, [(b"content-type", b"application/problem+json")], body)


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})

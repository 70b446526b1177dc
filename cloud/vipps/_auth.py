"""The access token: fetched on first use, cached, renewed before expiry, one refresh at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass

import httpx

from vendgate.protocol import Clock


@dataclass(frozen=True)
class AccessToken:
    value: str
    # On the clock's monotonic scale: a token lives ``expires_in`` seconds from its fetch,
    # however the wall clock is stepped meanwhile.
    expires_at: float


class AccessTokenCache:
    """Holds one token and shares its refresh among concurrent callers.

    ``fetch`` gets a new token from ``/accesstoken/get``; it runs under a lock, so a burst of
    requests with an expired token causes one fetch, not one per request.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[AccessToken]],
        clock: Clock,
        *,
        renew_before: float = 300.0,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._renew_before = renew_before
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    def _fresh(self) -> AccessToken | None:
        token = self._token
        if token is not None and self._clock.monotonic() < token.expires_at - self._renew_before:
            return token
        return None

    async def get(self) -> str:
        token = self._fresh()
        if token is not None:
            return token.value
        async with self._lock:
            token = self._fresh()  # another caller may have refreshed while we waited
            if token is None:
                self.fetch_count += 1
                token = self._token = await self._fetch()
        return token.value

    def invalidate(self, value: str) -> None:
        """Forget ``value`` after Vipps rejected it (unless a newer token already replaced it)."""
        if self._token is not None and self._token.value == value:
            self._token = None


class VippsBearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer``; after a 401 it renews the token and tries once more."""

    def __init__(self, tokens: AccessTokenCache) -> None:
        self._tokens = tokens

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        # httpx calls this before iterating, so raising here refuses a sync client at once.
        raise RuntimeError("the Vipps client is async only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._tokens.get()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            self._tokens.invalidate(token)
            request.headers["Authorization"] = f"Bearer {await self._tokens.get()}"
            yield request

"""The shared request path: headers, auth, JSON, retries and error mapping for every API."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

import httpx
import msgspec

from vendgate.protocol import Clock, SystemClock

from ._auth import AccessToken, AccessTokenCache, VippsBearerAuth
from ._errors import VippsRequestInvalid, VippsResponseInvalid, error_from_response
from ._retry import RetryPolicy, send_with_retry
from ._schemas import AccessTokenResponse
from ._settings import VippsSettings

T = TypeVar("T")

IDEMPOTENCY_KEY_MAX = 50
# Idempotency keys go into a header: printable ASCII without separators keeps every proxy happy.
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,50}$")
_REPEATABLE_METHODS = frozenset({"GET", "PUT", "DELETE"})


def check_idempotency_key(key: str) -> str:
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise VippsRequestInvalid(
            f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} printable ASCII characters: {key!r}"
        )
    return key


class VippsHttp:
    """Sends one logical Vipps call, repeating it on retryable failures with the same bytes."""

    def __init__(
        self,
        settings: VippsSettings,
        http: httpx.AsyncClient,
        *,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self._base_url = settings.base_url.rstrip("/")
        self._http = http
        self._clock = SystemClock() if clock is None else clock
        self._retry = retry or RetryPolicy()
        self.tokens = AccessTokenCache(self._fetch_token, self._clock)
        self._auth = VippsBearerAuth(self.tokens)

    def _system_headers(self) -> dict[str, str]:
        s = self.settings
        return {
            "Ocp-Apim-Subscription-Key": s.credentials.subscription_key,
            "Merchant-Serial-Number": s.credentials.msn,
            "Vipps-System-Name": s.system_name,
            "Vipps-System-Version": s.system_version,
            "Vipps-System-Plugin-Name": s.plugin_name,
            "Vipps-System-Plugin-Version": s.plugin_version,
        }

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: object | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send an authenticated request; return the 2xx response or raise a ``VippsError``."""
        all_headers = self._system_headers()
        if idempotency_key is not None:
            all_headers["Idempotency-Key"] = check_idempotency_key(idempotency_key)
        content = b""
        if body is not None:
            content = msgspec.json.encode(body)
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        request = self._http.build_request(
            method,
            self._base_url + path,
            content=content,
            headers=all_headers,
            params=params,
        )
        repeatable = method in _REPEATABLE_METHODS or idempotency_key is not None
        return await self._send(request, repeatable=repeatable, auth=self._auth)

    async def get_unauthenticated(self, url: str, headers: Mapping[str, str]) -> httpx.Response:
        """GET a public URL (e.g. a QR image link) with the same retry and error rules."""
        request = self._http.build_request("GET", url, headers=headers)
        return await self._send(request, repeatable=True, auth=None)

    async def _send(
        self, request: httpx.Request, *, repeatable: bool, auth: httpx.Auth | None
    ) -> httpx.Response:
        async def send_once() -> httpx.Response:
            if auth is None:
                return await self._http.send(request)
            return await self._http.send(request, auth=auth)

        response = await send_with_retry(
            send_once, self._retry, repeatable=repeatable, clock=self._clock
        )
        if response.is_success:
            return response
        raise error_from_response(response, None)

    async def _fetch_token(self) -> AccessToken:
        creds = self.settings.credentials
        headers = {
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            **self._system_headers(),
        }
        request = self._http.build_request(
            "POST", self._base_url + "/accesstoken/get", headers=headers, content=b""
        )
        # The token request changes nothing on the server, so it is always safe to repeat.
        response = await self._send(request, repeatable=True, auth=None)
        body = decode(response, AccessTokenResponse)
        return AccessToken(body.access_token, self._clock.monotonic() + float(body.expires_in))


def decode(response: httpx.Response, type_: type[T]) -> T:
    """Decode a JSON body whatever its declared content type (Vipps mislabels some)."""
    try:
        return msgspec.json.decode(response.content, type=type_)
    except msgspec.DecodeError as exc:
        raise VippsResponseInvalid(
            f"{response.request.method} {response.request.url.path}: {exc}"
        ) from exc

"""Webhook signatures: Vipps' HMAC-SHA256 scheme, to sign (simulator, tests) and verify (cloud).

The scheme (Webhooks API "request authentication"):

- ``x-ms-content-sha256`` = base64(SHA-256(raw body bytes));
- string to sign = ``POST\\n{path and query}\\n{x-ms-date};{host};{x-ms-content-sha256}``,
  where path, query and host are those of the *registered* webhook URL;
- ``Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=``
  base64(HMAC-SHA256(key = the secret's UTF-8 bytes, as given, not base64-decoded)).

Vipps documents no replay window, so :class:`WebhookVerifier` adds one on ``x-ms-date``.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit

from vendgate.protocol import Clock, SystemClock

from ._errors import WebhookVerificationError

SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"
DEFAULT_MAX_AGE = 300.0


def content_hash(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def host_of(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2]


def string_to_sign(url: str, date: str, body_hash: str) -> str:
    return f"POST\n{path_and_query(url)}\n{date};{host_of(url)};{body_hash}"


def authorization_header(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    signature = base64.b64encode(digest).decode("ascii")
    return f"HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={signature}"


def http_date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


def sign_webhook(secret: str, url: str, body: bytes, date: str) -> dict[str, str]:
    """The headers Vipps sends with ``body`` POSTed to the registered ``url`` at ``date``."""
    body_hash = content_hash(body)
    return {
        "x-ms-date": date,
        "x-ms-content-sha256": body_hash,
        "Authorization": authorization_header(secret, string_to_sign(url, date, body_hash)),
    }


class WebhookVerifier:
    """Checks that a webhook request was signed with ``secret`` for ``url``, and is fresh.

    ``url`` is the URL as registered with Vipps (its path, query and host are signed), so a
    proxy that rewrites the path or host in front of us does not break verification.
    """

    def __init__(
        self,
        secret: str,
        url: str,
        *,
        clock: Clock | None = None,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        self._secret = secret
        self._url = url
        self._clock = SystemClock() if clock is None else clock
        self._max_age = max_age

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise :class:`WebhookVerificationError` unless every check passes."""
        lower = {k.lower(): v for k, v in headers.items()}
        date = _required(lower, "x-ms-date")
        claimed_hash = _required(lower, "x-ms-content-sha256")
        authorization = _required(lower, "authorization")
        body_hash = content_hash(body)
        if not hmac.compare_digest(claimed_hash.encode(), body_hash.encode()):
            raise WebhookVerificationError("x-ms-content-sha256 does not match the body")
        expected = authorization_header(self._secret, string_to_sign(self._url, date, body_hash))
        if not hmac.compare_digest(authorization.encode(), expected.encode()):
            raise WebhookVerificationError("signature does not match")
        self._check_fresh(date)

    def _check_fresh(self, date: str) -> None:
        try:
            sent = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError) as exc:
            raise WebhookVerificationError(f"unreadable x-ms-date: {date!r}") from exc
        age = self._clock.now().timestamp() - sent
        if abs(age) > self._max_age:
            raise WebhookVerificationError(f"x-ms-date is {age:.0f}s away from now")


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise WebhookVerificationError(f"missing {name} header")
    return value

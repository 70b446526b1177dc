"""Access tokens the simulator issues and later accepts."""

from __future__ import annotations

import base64
import secrets

import msgspec


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenIssuer:
    def __init__(self, lifetime: int) -> None:
        self.lifetime = lifetime
        self._expiry: dict[str, float] = {}

    def issue(self, now: float) -> str:
        # JWT-shaped, like Vipps' tokens, though nobody should look inside.
        header = _b64(msgspec.json.encode({"typ": "JWT", "alg": "none"}))
        claims = _b64(msgspec.json.encode({"iat": int(now), "exp": int(now) + self.lifetime}))
        token = f"{header}.{claims}.{_b64(secrets.token_bytes(24))}"
        self._expiry[token] = now + self.lifetime
        return token

    def valid(self, token: str, now: float) -> bool:
        expiry = self._expiry.get(token)
        return expiry is not None and now < expiry

    def revoke_all(self) -> None:
        """Forget every token, as if they expired: clients must fetch new ones."""
        self._expiry.clear()

"""Secrets the cloud hands out once and keeps only as digests: API keys, machine passwords,
claim codes.

Each secret is 32 random bytes (a claim code is shorter, but lives minutes and is used once),
so a plain SHA-256 digest is enough: a slow password hash protects guessable human passwords,
and would only cost every request a few hundred milliseconds here. Digests are compared in
constant time so a timing measurement reveals nothing about a near miss.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["digest", "matches", "new_claim_code", "new_secret", "normal_claim_code"]

# Crockford's base32 without the letters people misread (I, L, O, U): what a technician types.
CLAIM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CLAIM_LENGTH = 10  # 50 bits: out of reach of guessing within a claim code's minutes


def new_secret() -> str:
    """32 random bytes, URL-safe (43 characters): an API key's or a machine password's secret."""
    return secrets.token_urlsafe(32)


def new_claim_code() -> str:
    """``XXXXX-XXXXX``: ten characters a person can read off a screen and type."""
    chars = "".join(secrets.choice(CLAIM_ALPHABET) for _ in range(CLAIM_LENGTH))
    return f"{chars[:5]}-{chars[5:]}"


def normal_claim_code(text: str) -> str:
    """What a technician typed, as issued: case, spaces and dashes do not matter."""
    chars = "".join(c for c in text.upper() if c.isalnum())
    return f"{chars[:5]}-{chars[5:]}"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)

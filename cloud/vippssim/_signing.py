"""Signing webhooks as Vipps does; written apart from the client's verifier on purpose.

If both shared one implementation, a mistake in it would pass every test. Both are checked
against the official test vector instead (tests/cloud/test_vipps_webhooks.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.utils import formatdate
from urllib.parse import urlsplit


def vipps_signature_headers(secret: str, url: str, body: bytes, now: float) -> dict[str, str]:
    parts = urlsplit(url)
    path_and_query = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    date = formatdate(now, usegmt=True)
    body_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
    message = f"POST\n{path_and_query}\n{date};{parts.netloc};{body_hash}"
    mac = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    signature = base64.b64encode(mac).decode()
    return {
        "x-ms-date": date,
        "x-ms-content-sha256": body_hash,
        "Authorization": (
            f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
        ),
        "Content-Type": "application/json",
    }

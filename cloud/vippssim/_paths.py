"""Paths matched whatever their case, as Vipps' API gateway does; path parameters kept as sent.

Vipps' own Postman collection calls ``/accessToken/get`` where the specs say
``/accesstoken/get``, and the real API answers it. Litestar routes by exact spelling, so an ASGI
wrapper in front of its router rewrites each request's path to the route's spelling: literal
segments as the route spells them, parameter segments (a reference is case-sensitive) untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

# One route: its segments, a literal lower-cased, or None where a path parameter stands.
Template = tuple[str | None, ...]


def route_templates(paths: Iterable[str]) -> list[Template]:
    """Templates from route paths such as ``/epayment/v1/payments/{reference:str}``."""
    return [
        tuple(None if part.startswith("{") else part.lower() for part in _segments(path))
        for path in paths
    ]


def canonical_path(path: str, templates: Sequence[Template]) -> str | None:
    """``path`` spelled as the route it matches ignoring case; None if it needs no change.

    Of several matches the one with the most literal segments wins, as a router prefers a
    literal to a parameter.
    """
    segments = _segments(path)
    matches = [template for template in templates if _matches(template, segments)]
    if not segments or not matches:
        return None
    best = max(matches, key=_literals)  # the first of equals, in route order
    spelled = "/" + "/".join(
        segment if literal is None else literal
        for literal, segment in zip(best, segments, strict=True)
    )
    return None if spelled == path.rstrip("/") else spelled


def _segments(path: str) -> list[str]:
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


def _matches(template: Template, segments: list[str]) -> bool:
    return len(template) == len(segments) and all(
        literal is None or literal == segment.lower()
        for literal, segment in zip(template, segments, strict=True)
    )


def _literals(template: Template) -> int:
    return sum(part is not None for part in template)


class CaseInsensitivePaths:
    """ASGI wrapper: rewrites ``path`` (and ``raw_path``) to the matching route's spelling."""

    def __init__(self, app: ASGIApp, templates: Sequence[Template]) -> None:
        self.app = app
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            spelled = canonical_path(scope["path"], self.templates)
            if spelled is not None:
                raw = scope.get("raw_path")
                respelled = _respell_raw(raw, spelled) if raw is not None else None
                scope = cast("Scope", {**scope, "path": spelled, "raw_path": respelled})
        await self.app(scope, receive, send)


def _respell_raw(raw: bytes, spelled: str) -> bytes:
    """The encoded path with the literal segments of ``spelled``; parameters stay encoded."""
    raw_segments = _segments(raw.decode("latin-1"))
    new_segments = _segments(spelled)
    if len(raw_segments) != len(new_segments):  # an encoded "/" inside a parameter: leave it
        return raw
    merged = [
        old if old.lower() != new.lower() else new
        for old, new in zip(raw_segments, new_segments, strict=True)
    ]
    return ("/" + "/".join(merged)).encode("latin-1")

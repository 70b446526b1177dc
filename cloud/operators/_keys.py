"""Operator API keys: created once (the key is shown then and never again), listed, revoked.

A key reads ``vgk_<id>_<secret>``: the id finds the row, the secret is checked against its
digest. Every request looks the key up, so a revocation holds at once on every replica.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import msgspec
from sqlmodel import col, select

from vendgate.cloud.clock import as_utc
from vendgate.cloud.db import ApiKey, SessionFactory, transaction
from vendgate.cloud.digests import digest, matches, new_secret
from vendgate.cloud.errors import InvalidInput, NotFound
from vendgate.protocol import Clock

PREFIX = "vgk_"
NAME_MAX = 100


class Scope(StrEnum):
    """What a key may do. ``read`` looks; each other scope changes one part of the fleet."""

    READ = "read"
    MACHINES = "machines"  # machines, planograms, credentials, stickers
    MONEY = "money"  # refunds
    ADMIN = "admin"  # API keys


@dataclass(frozen=True)
class Operator:
    """Who is calling: the key that authenticated the request."""

    key_id: str
    name: str
    scopes: frozenset[Scope]


class KeyView(msgspec.Struct, kw_only=True):
    id: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None = None


class NewKey(KeyView, kw_only=True):
    key: str  # shown this once; only its digest is kept


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes by name; an unknown or missing one is a 422 naming ``scopes``."""
    wanted = [value.strip() for value in values if value.strip()]
    if not wanted:
        raise InvalidInput("scopes must name at least one of: " + _known(), field="scopes")
    try:
        return frozenset(Scope(value) for value in wanted)
    except ValueError:
        unknown = sorted(set(wanted) - {s.value for s in Scope})
        text = f"unknown scope {unknown[0]!r}; known: {_known()}"
        raise InvalidInput(text, field="scopes") from None


def _known() -> str:
    return ", ".join(s.value for s in Scope)


def _view(row: ApiKey) -> KeyView:
    return KeyView(
        id=row.id,
        name=row.name,
        scopes=_scopes(row),
        created_at=as_utc(row.created_at),
        revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
    )


def _scopes(row: ApiKey) -> list[Scope]:
    return sorted(Scope(value) for value in row.scopes.split())


class ApiKeys:
    """The keys of this deployment, in its database."""

    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def create(self, name: str, scopes: Iterable[str]) -> NewKey:
        name = name.strip()
        if not name or len(name) > NAME_MAX:
            raise InvalidInput(f"name must be 1..{NAME_MAX} characters", field="name")
        granted = parse_scopes(scopes)
        key_id, secret = secrets.token_hex(8), new_secret()
        row = ApiKey(
            id=key_id,
            name=name,
            scopes=" ".join(sorted(granted)),
            digest=digest(secret),
            created_at=self._clock.now(),
        )
        async with transaction(self._sessions) as db:
            db.add(row)
        return NewKey(**msgspec.structs.asdict(_view(row)), key=f"{PREFIX}{key_id}_{secret}")

    async def all(self) -> Sequence[KeyView]:
        async with transaction(self._sessions) as db:
            rows = (await db.exec(select(ApiKey).order_by(col(ApiKey.created_at)))).all()
        return [_view(row) for row in rows]

    async def revoke(self, key_id: str) -> KeyView:
        """Revoke a key (again: no change); an unknown id is a 404."""
        async with transaction(self._sessions) as db:
            row = await db.get(ApiKey, key_id)
            if row is None:
                raise NotFound(f"no API key {key_id!r}")
            if row.revoked_at is None:
                row.revoked_at = self._clock.now()
                db.add(row)
            return _view(row)

    async def authenticate(self, presented: str) -> Operator | None:
        """The operator a presented key belongs to, or None (unknown, wrong or revoked)."""
        key_id, _, secret = presented.removeprefix(PREFIX).partition("_")
        if not presented.startswith(PREFIX) or not key_id or not secret:
            return None
        async with transaction(self._sessions) as db:
            row = await db.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None or not matches(secret, row.digest):
            return None
        return Operator(key_id=row.id, name=row.name, scopes=frozenset(_scopes(row)))

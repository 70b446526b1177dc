"""``/api/v1/keys``: an ``admin`` key creates, lists and revokes operator API keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from ._auth import needs
from ._keys import NAME_MAX, ApiKeys, KeyView, NewKey, Scope
from ._problems import problems


class KeyRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(description=f"1..{NAME_MAX} characters")]
    scopes: list[Scope]


class KeysController(Controller):
    path = "/keys"
    tags = ["keys"]
    opt = needs(Scope.ADMIN)

    @post("/", status_code=201, responses=problems())
    async def create(
        self, api_keys: NamedDependency[ApiKeys], data: JSONBody[KeyRequest]
    ) -> NewKey:
        """A new key; ``key`` is in this answer only (the cloud keeps a digest of it)."""
        return await api_keys.create(data.name, data.scopes)

    @get("/", responses=problems())
    async def list_keys(self, api_keys: NamedDependency[ApiKeys]) -> Sequence[KeyView]:
        """Every key, revoked ones included (with ``revoked_at``); never a key's secret."""
        return await api_keys.all()

    @delete("/{key_id:str}", status_code=200, responses=problems(404))
    async def revoke(self, key_id: FromPath[str], api_keys: NamedDependency[ApiKeys]) -> KeyView:
        """Revoke a key: it is refused from the next request on, on every replica."""
        return await api_keys.revoke(key_id)

"""The operator API under ``/api/v1``: API keys with scopes, and the fleet.

``operator_routers()`` gives the app two routers: the authenticated one (every route needs a
key, and the scope its ``opt`` names) and the public claim route a field technician uses. The
services they call live on ``app.state`` (``api_keys``, ``fleet``), built by the app. Every
error is a ``Problem`` (problem+json), and each route documents the statuses it can answer.
"""

from __future__ import annotations

from litestar import Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware

from vendgate.cloud.machines import Fleet, Stickers

from ._auth import COMPONENTS, SECURITY, ApiKeyAuth, scope_guard
from ._keys import ApiKeys, KeyView, NewKey, Operator, Scope, parse_scopes
from ._openapi import StrictStructSchemas
from ._problems import PROBLEM_JSON, Problem
from ._routes_keys import KeysController
from ._routes_machines import MachinesController, public_router, sticker_sheet

__all__ = [
    "COMPONENTS",
    "PROBLEM_JSON",
    "ApiKeys",
    "KeyView",
    "NewKey",
    "Operator",
    "Problem",
    "Scope",
    "StrictStructSchemas",
    "operator_routers",
    "parse_scopes",
]


def _api_keys(state: State) -> ApiKeys:
    keys: ApiKeys = state.api_keys
    return keys


def _fleet(state: State) -> Fleet:
    fleet: Fleet = state.fleet
    return fleet


def _stickers(state: State) -> Stickers:
    stickers: Stickers = state.stickers
    return stickers


def operator_routers() -> list[Router]:
    dependencies = {
        "api_keys": Provide(_api_keys, sync_to_thread=False),
        "fleet": Provide(_fleet, sync_to_thread=False),
        "stickers": Provide(_stickers, sync_to_thread=False),
    }
    authenticated = Router(
        path="/api/v1",
        route_handlers=[KeysController, MachinesController, sticker_sheet],
        middleware=[DefineMiddleware(ApiKeyAuth)],
        guards=[scope_guard],
        security=SECURITY,
        dependencies=dependencies,
    )
    public = public_router()
    public.dependencies.update(dependencies)
    return [authenticated, public]

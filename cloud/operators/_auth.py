"""Who may call the operator API: Litestar's authentication middleware plus one scope guard.

The middleware sits on the ``/api/v1`` router only, so the customer's pages and the Vipps
webhook stay public. It reads ``Authorization: Bearer <key>`` and answers 401 (problem+json,
``WWW-Authenticate``) for a missing, unknown or revoked key; a route names the scope it needs in
its ``opt`` and the guard answers 403 for a key without it.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme

from vendgate.cloud.errors import Forbidden, Unauthorized

from ._keys import ApiKeys, Operator, Scope

SCHEME = "ApiKey"
SECURITY: list[SecurityRequirement] = [{SCHEME: []}]
COMPONENTS = Components(
    security_schemes={
        SCHEME: SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="vgk_<id>_<secret>",
            description="An operator API key (`vendgate cloud create-key`, `POST /api/v1/keys`).",
        )
    }
)


def needs(scope: Scope) -> dict[str, Scope]:
    """A route's ``opt``: the scope its caller's key must have."""
    return {"scope": scope}


class ApiKeyAuth(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        keys: ApiKeys = connection.app.state.api_keys
        scheme, _, presented = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise Unauthorized("send an operator API key: Authorization: Bearer vgk_...")
        operator = await keys.authenticate(presented.strip())
        if operator is None:
            raise Unauthorized("the API key is unknown or revoked")
        return AuthenticationResult(user=operator, auth=operator.key_id)


def scope_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    wanted: Scope | None = handler.opt.get("scope")
    operator: Operator = connection.user
    if wanted is not None and wanted not in operator.scopes:
        raise Forbidden(f"this API key lacks the {wanted.value!r} scope")

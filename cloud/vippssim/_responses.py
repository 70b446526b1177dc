"""Small helpers shared by the route modules."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response

from ._problems import SimProblem, problem_body

AnyRequest = Request[Any, Any, Any]


def json_response(
    content: object, status: int = 200, media_type: str = "application/json"
) -> Response[bytes]:
    return Response(msgspec.json.encode(content), status_code=status, media_type=media_type)


def base_url(request: AnyRequest, public_url: str | None) -> str:
    return (public_url or str(request.base_url)).rstrip("/")


def problem_response(request: AnyRequest, problem: SimProblem) -> Response[bytes]:
    body, media_type = problem_body(problem, request.url.path)
    return Response(body, status_code=problem.status, media_type=media_type)

"""The body of every error the cloud answers in JSON, and how the operator API documents it.

``on_error`` (cloud/app.py) builds each error's body as a ``Problem``, so the schema below is
the body by construction. A route lists the statuses it can answer with ``problems(...)``;
the specs themselves are made once here and shared by every route.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from litestar.openapi.datastructures import ResponseSpec

PROBLEM_JSON: Final = "application/problem+json"


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem: what went wrong, for people (``detail``) and programs."""

    type: Annotated[str, msgspec.Meta(description="always about:blank: `status` says the kind")]
    title: Annotated[str, msgspec.Meta(description="the status's short wording")]
    status: Annotated[int, msgspec.Meta(description="the HTTP status code")]
    detail: Annotated[str, msgspec.Meta(description="what went wrong, in a sentence")]
    field: Annotated[
        str | msgspec.UnsetType,
        msgspec.Meta(description="on a 422: the body field or parameter, e.g. slots[2].price"),
    ] = msgspec.UNSET


_WHY: Final = {
    400: "The body is not JSON.",
    401: "No API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`).",
    403: "The API key lacks the scope this route needs.",
    404: "No such machine, API key or claim code.",
    409: "The machine's state refuses the change now (its id is taken, or a purchase is open).",
    422: "A body field or parameter is missing, of the wrong type or out of bounds; "
    "`field` names it.",
    502: "The broker or the Vipps API refused or did not answer; safe to repeat.",
}
PROBLEMS: Final = {
    status: ResponseSpec(
        data_container=Problem, description=why, media_type=PROBLEM_JSON, generate_examples=False
    )
    for status, why in _WHY.items()
}
# What any route behind an API key can answer: its key is checked, then its scope, then its input.
AUTHENTICATED: Final = (400, 401, 403, 422)


def problems(*statuses: int, public: bool = False) -> dict[int, ResponseSpec]:
    """A route's error responses: the statuses it adds to those every operator route has."""
    common = (400, 422) if public else AUTHENTICATED
    return {status: PROBLEMS[status] for status in sorted({*common, *statuses})}

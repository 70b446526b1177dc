"""``/api/v1/machines``: the fleet, each machine's planogram, broker login and claim codes.

Reading needs the ``read`` scope, every change the ``machines`` scope. Bodies are msgspec
structs: a wrong type or an unknown field is a 422 naming it, as is a value out of bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final, Literal

import msgspec
from litestar import Controller, Response, Router, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import FromPath, JSONBody, Parameter

from vendgate.cloud.machines import (
    BrokerLogin,
    ClaimCodeView,
    CreatedMachine,
    Fleet,
    MachineBody,
    MachinePage,
    MachinePatch,
    MachineView,
    SlotBody,
    Stickers,
)

from ._auth import needs
from ._keys import Scope
from ._problems import problems

READ, WRITE = needs(Scope.READ), needs(Scope.MACHINES)
MachineId = FromPath[str]
PNG: Final = "image/png"
SVG: Final = "image/svg+xml"


@dataclass
class StickerOperation(Operation):
    """The sticker's 200 is a PNG or, with ``format=svg``, an SVG; Litestar documents one
    media type per response, so the SVG is added to the generated operation here."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content is not None:
            ok.content[SVG] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))


class MachinesController(Controller):
    path = "/machines"
    tags = ["machines"]

    @post("/", opt=WRITE, status_code=201, responses=problems(409, 502))
    async def create(
        self, fleet: NamedDependency[Fleet], data: JSONBody[MachineBody]
    ) -> CreatedMachine:
        """A new machine, its planogram and its broker login (the password is shown once)."""
        return await fleet.create(data)

    @get("/", opt=READ, responses=problems())
    async def list_machines(
        self,
        fleet: NamedDependency[Fleet],
        status: Annotated[
            Literal["online", "offline", "disabled"] | None, Parameter(required=False)
        ] = None,
        q: Annotated[str | None, Parameter(description="part of the name", required=False)] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(description="next_cursor of the last page")] = None,
    ) -> MachinePage:
        """The fleet, ordered by id, a page at a time (pass ``next_cursor`` back)."""
        return await fleet.find(status=status, search=q, limit=limit, cursor=cursor)

    @get("/{machine_id:str}", opt=READ, responses=problems(404))
    async def get_machine(
        self, fleet: NamedDependency[Fleet], machine_id: MachineId
    ) -> MachineView:
        return await fleet.get(machine_id)

    @patch("/{machine_id:str}", opt=WRITE, responses=problems(404))
    async def update(
        self, fleet: NamedDependency[Fleet], machine_id: MachineId, data: JSONBody[MachinePatch]
    ) -> MachineView:
        """Change the name, the location, or whether the machine sells (``disabled``)."""
        return await fleet.update(machine_id, data)

    @delete("/{machine_id:str}", opt=WRITE, responses=problems(404, 409, 502))
    async def remove(self, fleet: NamedDependency[Fleet], machine_id: MachineId) -> None:
        """Take the machine out of the fleet and the broker; 409 while a purchase is open."""
        await fleet.delete(machine_id)

    @put("/{machine_id:str}/planogram", opt=WRITE, responses=problems(404))
    async def put_planogram(
        self, fleet: NamedDependency[Fleet], machine_id: MachineId, data: JSONBody[list[SlotBody]]
    ) -> MachineView:
        """Replace the whole planogram and send it to the machine (``cmd/config``).

        The highest enabled price becomes the reservation; open purchases keep their prices.
        """
        return await fleet.put_planogram(machine_id, data)

    @post("/{machine_id:str}/credentials", opt=WRITE, status_code=201, responses=problems(404, 502))
    async def rotate(self, fleet: NamedDependency[Fleet], machine_id: MachineId) -> BrokerLogin:
        """A new broker password (shown once); the old one is refused from now on."""
        return await fleet.rotate(machine_id)

    @delete("/{machine_id:str}/credentials", opt=WRITE, responses=problems(404, 502))
    async def revoke(self, fleet: NamedDependency[Fleet], machine_id: MachineId) -> None:
        """Refuse the machine at the broker and disconnect it, until its login is rotated."""
        await fleet.revoke(machine_id)

    @post("/{machine_id:str}/claim-code", opt=WRITE, status_code=201, responses=problems(404))
    async def claim_code(
        self, fleet: NamedDependency[Fleet], machine_id: MachineId
    ) -> ClaimCodeView:
        """A one-time code for ``vendgate edge claim`` on the machine, valid for minutes."""
        return await fleet.claim_code(machine_id)

    @get(
        "/{machine_id:str}/sticker",
        opt=READ,
        media_type=PNG,
        responses=problems(404, 502),
        operation_class=StickerOperation,
    )
    async def sticker(
        self,
        stickers: NamedDependency[Stickers],
        machine_id: MachineId,
        format: Annotated[  # the query's name, so a 422 names it
            Literal["png", "svg"], Parameter(description="png (300 dpi) or svg")
        ] = "png",
    ) -> Response[bytes]:
        """The machine's printable sticker: its QR (registered with the Vipps QR API), name,
        "Scan with Vipps or your camera" and its id in small print, 70 x 90 mm."""
        headers = {"Content-Disposition": f'inline; filename="sticker-{machine_id}.{format}"'}
        if format == "svg":
            svg = (await stickers.svg(machine_id)).encode()
            return Response(svg, media_type=SVG, headers=headers)
        return Response(await stickers.png(machine_id), media_type=PNG, headers=headers)


@get(
    "/stickers.pdf",
    opt=READ,
    tags=["machines"],
    media_type="application/pdf",
    responses=problems(404, 502),
)
async def sticker_sheet(
    stickers: NamedDependency[Stickers],
    machine: Annotated[list[str], Parameter(description="machine ids, repeated")],
) -> Response[bytes]:
    """A4 print sheets of stickers (3 x 4 per page, cut marks); print at 100 %."""
    pdf = await stickers.sheet(machine)
    headers = {"Content-Disposition": 'inline; filename="stickers.pdf"'}
    return Response(pdf, media_type="application/pdf", headers=headers)


class ClaimRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    code: str


@post(
    "/claims",
    status_code=200,
    tags=["machines"],
    exclude_from_auth=True,
    security=[],
    responses=problems(404, 502, public=True),
)
async def claim(fleet: NamedDependency[Fleet], data: JSONBody[ClaimRequest]) -> BrokerLogin:
    """Public: a technician's claim code, once, for the machine's broker login."""
    return await fleet.claim(data.code)


def public_router() -> Router:
    return Router(path="/api/v1", route_handlers=[claim])

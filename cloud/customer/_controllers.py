"""Customer routes: the scan URL on the sticker, the status page, and its JSON."""

from __future__ import annotations

from litestar import Controller, MediaType, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.response import Redirect

from vendgate.cloud.context import CloudContext

from ._limits import CustomerLimits, provide_limits
from ._pages import status_page
from ._service import StatusView, start_purchase, status_view

# Litestar adds "; charset=utf-8" to every text/* media type itself.
HTML = MediaType.HTML


class CustomerController(Controller):
    tags = ["customer"]
    dependencies = {"limits": Provide(provide_limits, sync_to_thread=False)}

    @get("/m/{machine_id:str}", status_code=302)
    async def scan(
        self,
        ctx: NamedDependency[CloudContext],
        limits: NamedDependency[CustomerLimits],
        machine_id: FromPath[str],
    ) -> Redirect:
        """The sticker's URL: start a purchase and send the phone on to Vipps.

        Rate limited per known machine (429 page, nothing created); unknown ids stay 404.
        """
        now = ctx.clock()
        started = await start_purchase(
            ctx, machine_id, admit=lambda machine: limits.admit_scan(machine, now)
        )
        assert started.redirect_url is not None  # redirect mode always gets one
        return Redirect(started.redirect_url, status_code=302)

    @get("/s/{token:str}", media_type=HTML)
    async def status(
        self,
        ctx: NamedDependency[CloudContext],
        limits: NamedDependency[CustomerLimits],
        token: FromPath[str],
    ) -> Response[str]:
        limits.admit_status(token, ctx.clock())
        view = await status_view(ctx, token)
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        return Response(status_page(view, f"/s/{token}/state"), media_type=HTML, headers=headers)

    @get("/s/{token:str}/state")
    async def state(
        self,
        ctx: NamedDependency[CloudContext],
        limits: NamedDependency[CustomerLimits],
        token: FromPath[str],
    ) -> Response[StatusView]:
        limits.admit_status(token, ctx.clock())
        view = await status_view(ctx, token)
        return Response(view, headers={"Cache-Control": "no-store"})

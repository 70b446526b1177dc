"""Customer routes: the scan URL on the sticker, the status page, and its JSON."""

from __future__ import annotations

from litestar import Controller, MediaType, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect

from ._pages import status_page
from ._service import CustomerService, StatusView

# Litestar adds "; charset=utf-8" to every text/* media type itself.
HTML = MediaType.HTML


class CustomerController(Controller):
    """The routes take the app's one ``CustomerService`` as the ``customers`` dependency."""

    tags = ["customer"]

    @get("/m/{machine_id:str}", status_code=302)
    async def scan(
        self, customers: NamedDependency[CustomerService], machine_id: FromPath[str]
    ) -> Redirect:
        """The sticker's URL: start a purchase and send the phone on to Vipps.

        Rate limited per known machine (429 page, nothing created); unknown ids stay 404.
        """
        started = await customers.scan(machine_id)
        assert started.redirect_url is not None  # redirect mode always gets one
        return Redirect(started.redirect_url, status_code=302)

    @get("/s/{token:str}", media_type=HTML)
    async def status(
        self, customers: NamedDependency[CustomerService], token: FromPath[str]
    ) -> Response[str]:
        view = await customers.status(token)
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        return Response(status_page(view, f"/s/{token}/state"), media_type=HTML, headers=headers)

    @get("/s/{token:str}/state")
    async def state(
        self, customers: NamedDependency[CustomerService], token: FromPath[str]
    ) -> Response[StatusView]:
        view = await customers.status(token)
        return Response(view, headers={"Cache-Control": "no-store"})

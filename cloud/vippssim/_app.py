"""``create_vipps_sim``: the simulator as a Litestar app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
from litestar import Litestar, Response
from litestar.di import Provide

from vendgate.protocol import Clock

from ._fault_middleware import fault_injection
from ._paths import CaseInsensitivePaths, route_templates
from ._problems import SimProblem
from ._responses import AnyRequest, problem_response
from ._routes_customer import CustomerController
from ._routes_epayment import EPaymentController
from ._routes_merchant import WebhooksController, access_token, post_receipt
from ._routes_qr import MerchantCallbackController, MerchantRedirectController
from ._settings import SimSettings
from ._simulator import VippsSimulator


def create_vipps_sim(
    settings: SimSettings | None = None,
    *,
    clock: Clock | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    webhook_http: httpx.AsyncClient | None = None,
) -> Litestar:
    """The simulator app; its ``VippsSimulator`` is ``app.state.sim``.

    Under a server with lifespan (uvicorn) a sweeper expires payments every second and
    shutdown closes webhook delivery. Under ``httpx.ASGITransport`` there is no lifespan:
    time is applied on every request (or by ``sim.tick()``), and the test closes ``sim``.
    """
    sim = VippsSimulator(
        settings or SimSettings(), clock=clock, sleep=sleep, webhook_http=webhook_http
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(sim.sweep())
        try:
            yield
        finally:
            sweeper.cancel()
            await sim.aclose()

    def on_problem(request: AnyRequest, problem: SimProblem) -> Response[bytes]:
        return problem_response(request, problem)

    app = Litestar(
        route_handlers=[
            access_token,
            EPaymentController,
            WebhooksController,
            MerchantRedirectController,
            MerchantCallbackController,
            post_receipt,
            CustomerController,
        ],
        dependencies={"sim": Provide(lambda: sim, sync_to_thread=False)},
        exception_handlers={SimProblem: on_problem},
        middleware=[fault_injection(sim)],
        lifespan=[lifespan],
        openapi_config=None,
    )
    app.state.sim = sim
    # In front of the router, which matches exact spellings: Vipps' gateway takes any case.
    templates = route_templates(route.path for route in app.routes)
    app.asgi_handler = CaseInsensitivePaths(app.asgi_handler, templates)
    return app

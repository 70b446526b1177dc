"""``create_app``: the cloud as one Litestar app, its resources opened and closed in lifespan.

Lifespan, in order: the database engine (migrated to head unless told not to), the httpx
client and the Vipps client, the shared ``CloudContext`` (and the Vipps webhook registration),
then the background tasks: the MQTT link with its outbox publisher, and the reconciler.
Everything is on ``app.state``; controllers get the context by injection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import httpx
from litestar import Litestar, MediaType, Request, Response, get
from litestar.datastructures import MutableScopeHeaders, State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.types import Message, Scope

from vendgate.cloud.db import create_engine, is_postgres, session_factory, upgrade_to_head
from vendgate.cloud.vipps import RetryPolicy, VippsClient
from vendgate.protocol.mqtt import TopicFilter, TopicTree

from .clock import Clock, system_clock
from .context import CloudContext
from .customer import CONTENT_SECURITY_POLICY, CustomerController, CustomerLimits, error_page
from .errors import HttpRefusal, VendgateError
from .faults import Faults, no_faults
from .mqtt import MessageHandler, MqttLink, run_publisher
from .payments import ensure_webhook_registered, webhook_handler
from .reconciler import Reconciler
from .settings import CloudSettings

log = logging.getLogger(__name__)

CUSTOMER_PAGE_PREFIXES = ("/m/", "/s/")
VIPPS_TIMEOUT = 10.0
# On every response: the customer's pages allow only their own inline script and style, and
# nothing may frame them or be read as another type than the one sent.
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def provide_ctx(state: State) -> CloudContext:
    ctx: CloudContext = state.ctx
    return ctx


@get("/healthz", tags=["ops"])
async def healthz(state: State) -> dict[str, bool]:
    link: MqttLink | None = state.get("mqtt")
    return {"ok": True, "mqtt": bool(link and link.connected.is_set())}


def on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[object]:
    """One handler: friendly HTML on customer pages, RFC 7807 problem+json elsewhere.

    The error's own headers (``Retry-After`` on 429, ``Allow`` on 405) go out on both.
    """
    if not isinstance(exc, VendgateError):
        if isinstance(exc, HTTPException):
            exc = HttpRefusal(exc.status_code, exc.detail, exc.headers)
        else:
            log.exception("unhandled error on %s", request.url.path, exc_info=exc)
            exc = VendgateError("something went wrong on our side")
    path, headers = request.url.path, exc.headers
    if path.startswith(CUSTOMER_PAGE_PREFIXES) and not path.endswith("/state"):
        return Response(
            error_page(exc), status_code=exc.status_code, media_type=MediaType.HTML, headers=headers
        )
    problem = {
        "type": "about:blank",
        "title": exc.title,
        "status": exc.status_code,
        "detail": exc.detail,
    }
    return Response(
        problem, status_code=exc.status_code, media_type="application/problem+json", headers=headers
    )


async def add_security_headers(message: Message, scope: Scope) -> None:
    """On every response, errors and the router's own 404/405 included (a ``before_send`` hook)."""
    if message["type"] == "http.response.start":
        headers = MutableScopeHeaders.from_message(message)
        for name, value in SECURITY_HEADERS.items():
            headers[name] = value


def create_app(
    settings: CloudSettings | None = None,
    *,
    clock: Clock = system_clock,
    vipps_transport: httpx.AsyncBaseTransport | None = None,
    faults: Faults = no_faults,
) -> Litestar:
    """The cloud app. Tests pass settings, a clock, a transport to the Vipps simulator and
    ``faults`` (the crash tests' seam, cloud/faults.py)."""
    settings = settings or CloudSettings.from_env()

    @contextlib.asynccontextmanager
    async def database(app: Litestar) -> AsyncIterator[None]:
        engine = create_engine(settings.database.url)
        if settings.database.migrate_on_start:
            await upgrade_to_head(engine)
        app.state.engine = engine
        try:
            yield
        finally:
            await engine.dispose()

    @contextlib.asynccontextmanager
    async def vipps(app: Litestar) -> AsyncIterator[None]:
        async with httpx.AsyncClient(transport=vipps_transport, timeout=VIPPS_TIMEOUT) as http:
            app.state.vipps = VippsClient(settings.vipps, http)
            # The scan's create: one attempt, so a phone never waits through the retries.
            app.state.scan_vipps = VippsClient(
                settings.vipps, http, retry=RetryPolicy(max_attempts=1)
            )
            yield

    @contextlib.asynccontextmanager
    async def context(app: Litestar) -> AsyncIterator[None]:
        ctx = CloudContext(
            settings=settings,
            sessions=session_factory(app.state.engine),
            vipps=app.state.vipps,
            clock=clock,
            postgres=is_postgres(app.state.engine),
            tree=TopicTree(settings.mqtt.prefix),
            faults=faults,
            scan_vipps=app.state.scan_vipps,
        )
        app.state.ctx = ctx
        # Per replica, in memory: abuse protection only (docs/cloud.md, "Rate limits").
        app.state.customer_limits = CustomerLimits.from_settings(settings.rate_limits)
        await ensure_webhook_registered(ctx)
        yield

    @contextlib.asynccontextmanager
    async def background(app: Litestar) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(coro) for coro in _background_work(app, settings)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    return Litestar(
        route_handlers=[CustomerController, webhook_handler(settings.webhooks.path), healthz],
        dependencies={"ctx": Provide(provide_ctx, sync_to_thread=False)},
        exception_handlers={Exception: on_error},
        before_send=[add_security_headers],
        lifespan=[database, vipps, context, background],
        openapi_config=None,
    )


def _background_work(app: Litestar, settings: CloudSettings) -> list[Coroutine[Any, Any, None]]:
    ctx: CloudContext = app.state.ctx
    work: list[Coroutine[Any, Any, None]] = []
    if settings.run_mqtt:
        link = MqttLink(
            settings.mqtt,
            cloud_filters(ctx),
            MessageHandler(ctx),  # it answers with the acks; the link publishes them
            on_connect=ctx.kick_outbox,
            presence=ctx.tree.cloud_presence(),
        )
        ctx.pings.link = link
        app.state.mqtt = link
        work += [link.run(), run_publisher(ctx, link)]
    if settings.run_reconciler:
        work.append(Reconciler(ctx).run())
    return work


def cloud_filters(ctx: CloudContext) -> list[TopicFilter]:
    """Events and telemetry shared between replicas when the broker can; status plainly.

    Every replica takes every status: Mosquitto sends no retained message to a shared
    subscription, and a status is idempotent (ordered by boot and seq) anyway. With shared
    events every replica also takes every pong plainly: the one that pinged is waiting for it
    (without sharing, the events filter already brings them all).
    """
    group = "cloud" if ctx.settings.mqtt.shared_subscriptions else None
    tree = ctx.tree
    filters = [tree.events_filter(group), tree.telemetry_filter(group), tree.status_filter()]
    if group is not None:
        filters.append(tree.pong_filter())
    return filters

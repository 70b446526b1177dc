"""``create_app``: the cloud as one Litestar app, its resources opened and closed in lifespan.

This is the composition root. Lifespan, in order: the database engine (migrated to head unless
told not to), the httpx client and the Vipps client, then ``build_parts`` makes every part with
exactly the collaborators it uses (``CloudParts``; the Vipps webhook is registered), then the
background tasks: the MQTT link with its outbox publisher, and the reconciler. The routes take
their one service each by injection (``customers``, ``webhooks``); no part is handed the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar.datastructures import MutableScopeHeaders, State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.types import Message, Scope
from sqlalchemy.ext.asyncio import AsyncEngine

from vendgate.cloud.db import (
    SessionFactory,
    create_engine,
    is_postgres,
    session_factory,
    upgrade_to_head,
)
from vendgate.cloud.machines import Heartbeats, Pings
from vendgate.cloud.vends import VendService, VippsExecutor
from vendgate.cloud.vipps import RetryPolicy, VippsClient
from vendgate.protocol import Clock, SystemClock
from vendgate.protocol.mqtt import TopicFilter, TopicTree

from .broker import BrokerAccounts, accounts_for
from .customer import (
    CONTENT_SECURITY_POLICY,
    CustomerController,
    CustomerLimits,
    CustomerService,
    Purchases,
    error_page,
)
from .errors import HttpRefusal, InvalidInput, VendgateError
from .faults import Faults, no_faults
from .machines import Fleet, FleetPolicy, Stickers
from .mqtt import MessageHandler, MqttLink, OutboxPublisher
from .operators import (
    COMPONENTS,
    PROBLEM_JSON,
    ApiKeys,
    Problem,
    StrictStructSchemas,
    operator_routers,
)
from .payments import Webhooks, webhook_handler
from .reconciler import Reconciler
from .settings import CloudSettings

log = logging.getLogger(__name__)

# The operator API's documentation: the schema at /schema/openapi.json, Scalar's UI at /schema.
OPENAPI = OpenAPIConfig(
    title="vendgate cloud",
    version="1",
    description=(
        "The operator API of a vendgate cloud: API keys, machines, planograms, broker logins, "
        "claim codes and stickers. Every /api/v1 route but POST /api/v1/claims needs an API key "
        "(Authorization: Bearer vgk_...) with the scope the route names. Errors are RFC 9457 "
        "problem+json; a 422 names the offending field in `field`."
    ),
    components=COMPONENTS,
    path="/schema",
    render_plugins=[ScalarRenderPlugin()],
    create_examples=False,
)

CUSTOMER_PAGE_PREFIXES = ("/m/", "/s/")
VIPPS_TIMEOUT = 10.0
# On every response: the customer's pages allow only their own inline script and style, and
# nothing may frame them or be read as another type than the one sent.
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
# The API reference page (Scalar, at /schema) loads its script and fonts from jsDelivr and
# styles itself inline; everything else keeps the strict policy above.
SCHEMA_PAGE_CSP = (
    "default-src 'self'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src 'self' https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
    "font-src 'self' https://cdn.jsdelivr.net https://fonts.gstatic.com data:; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class CloudParts:
    """What ``build_parts`` made for one running app, on ``app.state.parts``.

    The route providers hand out ``customers`` and ``webhooks``; tests and the demo read the
    rest. No part is given this record: each got its own collaborators when it was built.
    ``work`` and ``outbox`` are wake-ups only (every fact they hint at is in the database
    already, so a lost one costs at most one interval of the reconciler or the publisher).
    """

    settings: CloudSettings
    sessions: SessionFactory
    clock: Clock
    vends: VendService
    handler: MessageHandler
    reconciler: Reconciler
    customers: CustomerService
    webhooks: Webhooks
    work: asyncio.Event
    outbox: asyncio.Event
    api_keys: ApiKeys
    fleet: Fleet
    stickers: Stickers
    link: MqttLink | None = None  # None: the app runs no MQTT (settings.run_mqtt)
    publisher: OutboxPublisher | None = None

    @property
    def vipps(self) -> VippsClient:
        return self.vends.executor.vipps

    def background_work(self) -> list[Coroutine[Any, Any, None]]:
        work: list[Coroutine[Any, Any, None]] = []
        if self.link is not None and self.publisher is not None:
            work += [self.link.run(self.handler), self.publisher.run()]
        if self.settings.run_reconciler:
            work.append(self.reconciler.run())
        return work


def build_parts(
    settings: CloudSettings,
    engine: AsyncEngine,
    executor: VippsExecutor,
    *,
    clock: Clock,
    faults: Faults,
    broker_accounts: BrokerAccounts,
) -> CloudParts:
    """Every part, each given what it uses. The link comes first: the pings publish over it,
    and it takes the handler (which answers pongs to the pings) only when it runs."""
    sessions, postgres = session_factory(engine), is_postgres(engine)
    tree = TopicTree(settings.mqtt.prefix)
    timing = settings.timing
    work, outbox = asyncio.Event(), asyncio.Event()
    link = _mqtt_link(settings, tree, on_connect=outbox.set) if settings.run_mqtt else None
    pings = Pings(tree, clock, link)
    publisher = None
    if link is not None:
        publisher = OutboxPublisher(sessions, link, outbox, clock=clock, postgres=postgres)
    vends = VendService(
        sessions,
        executor,
        clock=clock,
        timing=timing,
        tree=tree,
        faults=faults,
        on_command=outbox.set,
        on_work=work.set,
        send=None if publisher is None else publisher.send,
        inline_work=settings.run_reconciler,
        concurrency=settings.work_concurrency,
    )
    purchases = Purchases(sessions, vends, pings, clock=clock, timing=timing)
    # Per replica, in memory: abuse protection only (docs/cloud.md, "Rate limits").
    limits = CustomerLimits.from_settings(settings.rate_limits)
    webhooks = Webhooks(
        settings.webhooks,
        settings.webhook_url,
        sessions,
        vends,
        purchases,
        clock=clock,
    )
    handler = MessageHandler(
        sessions,
        vends,
        pings,
        tree,
        clock=clock,
        on_command=outbox.set,
        heartbeats=Heartbeats(timing.heartbeat_window / 8),
    )
    reconciler = Reconciler(
        vends,
        sessions,
        work,
        clock=clock,
        timing=timing,
        postgres=postgres,
        concurrency=settings.work_concurrency,
    )
    policy = FleetPolicy(
        public_url=settings.public_url,
        machine_mqtt_url=settings.machine_mqtt_url,
        max_price=settings.fleet.max_price,
        claim_minutes=settings.fleet.claim_minutes,
    )
    return CloudParts(
        api_keys=ApiKeys(sessions, clock),
        fleet=Fleet(sessions, clock, tree, broker_accounts, policy),
        stickers=Stickers(sessions, executor.vipps, settings.public_url),
        settings=settings,
        sessions=sessions,
        clock=clock,
        vends=vends,
        handler=handler,
        reconciler=reconciler,
        customers=CustomerService(purchases, sessions, limits, clock),
        webhooks=webhooks,
        work=work,
        outbox=outbox,
        link=link,
        publisher=publisher,
    )


def _mqtt_link(
    settings: CloudSettings, tree: TopicTree, *, on_connect: Callable[[], None]
) -> MqttLink:
    """The link; on every connect the outbox is published at once (``on_connect``)."""
    filters = cloud_filters(tree, shared=settings.mqtt.shared_subscriptions)
    return MqttLink(
        settings.mqtt,
        filters,
        on_connect=on_connect,
        presence=tree.cloud_presence(),
        machine_level=len(tree.prefix.split("/")),
        express=tree.pong_filter(),
    )


def provide_customers(state: State) -> CustomerService:
    parts: CloudParts = state.parts
    return parts.customers


def provide_webhooks(state: State) -> Webhooks:
    parts: CloudParts = state.parts
    return parts.webhooks


@get("/healthz", tags=["ops"])
async def healthz(state: State) -> dict[str, bool]:
    link = state.parts.link
    return {"ok": True, "mqtt": bool(link and link.connected.is_set())}


def on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[object]:
    """One handler: friendly HTML on customer pages, RFC 7807 problem+json elsewhere.

    The error's own headers (``Retry-After`` on 429, ``Allow`` on 405) go out on both.
    """
    if not isinstance(exc, VendgateError):
        if isinstance(exc, ValidationException):
            exc = _invalid_input(exc)
        elif isinstance(exc, HTTPException):
            exc = HttpRefusal(exc.status_code, exc.detail, exc.headers)
        else:
            log.exception("unhandled error on %s", request.url.path, exc_info=exc)
            exc = VendgateError("something went wrong on our side")
    path, headers = request.url.path, exc.headers
    if path.startswith(CUSTOMER_PAGE_PREFIXES) and not path.endswith("/state"):
        return Response(
            error_page(exc), status_code=exc.status_code, media_type=MediaType.HTML, headers=headers
        )
    field = getattr(exc, "field", None)
    problem = Problem(
        type="about:blank",
        title=exc.title,
        status=exc.status_code,
        detail=exc.detail,
        field=field if isinstance(field, str) else msgspec.UNSET,
    )
    return Response(problem, status_code=exc.status_code, media_type=PROBLEM_JSON, headers=headers)


MISSING_PARAMETER = re.compile(r"Missing required \w+ parameter '([^']+)'")


def _invalid_input(exc: ValidationException) -> InvalidInput:
    """Litestar's own refusal of a body or parameter, as our 422 naming the field.

    msgspec says where: "Expected `int`, got `str` - at `$.slots[0].price`", or for a query
    parameter Litestar gives its key. Litestar calls the body ``data``; we call it ``body``.
    """
    errors = exc.extra if isinstance(exc.extra, list) else []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    message = str(first.get("message") or exc.detail)
    field = str(first.get("key") or "")
    if first.get("source") == "body" and field == "data":  # the body as a whole
        field = ""
        if message == "'data'":  # Litestar's KeyError: no body at all
            message = "a JSON body is required"
    if absent := MISSING_PARAMETER.match(message):  # Litestar's own wording, with no ``extra``
        field, message = absent.group(1), absent.group(0)
    message, _, where = message.partition(" - at `$")
    if where:
        field = where.rstrip("`").lstrip(".")
    named = re.search(r"(?:unknown|missing required) field `([^`]+)`", message)
    if named:  # the field inside the object msgspec points at
        field = f"{field}.{named.group(1)}" if field else named.group(1)
    return InvalidInput(f"{field or 'body'}: {message}", field=field or "body")


async def add_security_headers(message: Message, scope: Scope) -> None:
    """On every response, errors and the router's own 404/405 included (a ``before_send`` hook)."""
    if message["type"] == "http.response.start":
        headers = MutableScopeHeaders.from_message(message)
        for name, value in SECURITY_HEADERS.items():
            headers[name] = value
        if scope.get("path", "").rstrip("/") == OPENAPI.path:
            headers["Content-Security-Policy"] = SCHEMA_PAGE_CSP


def create_app(
    settings: CloudSettings | None = None,
    *,
    clock: Clock | None = None,
    vipps_transport: httpx.AsyncBaseTransport | None = None,
    faults: Faults = no_faults,
    broker_accounts: BrokerAccounts | None = None,
) -> Litestar:
    """The cloud app. Tests pass settings, a clock (default ``SystemClock()``), a transport to
    the Vipps simulator and ``faults`` (the crash tests' seam, cloud/faults.py)."""
    settings = settings or CloudSettings.from_env()
    the_clock = clock or SystemClock()

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
            # The app's clock drives token expiry and Retry-After too (one clock for the app).
            app.state.vipps = VippsClient(settings.vipps, http, clock=the_clock)
            # The scan's create: one attempt, so a phone never waits through the retries.
            app.state.scan_vipps = VippsClient(
                settings.vipps, http, clock=the_clock, retry=RetryPolicy(max_attempts=1)
            )
            yield

    @contextlib.asynccontextmanager
    async def parts(app: Litestar) -> AsyncIterator[None]:
        executor = VippsExecutor(app.state.vipps, settings, scan_vipps=app.state.scan_vipps)
        accounts = broker_accounts or accounts_for(
            settings.fleet.broker_admin_url, settings.mqtt.prefix
        )
        built = build_parts(
            settings,
            app.state.engine,
            executor,
            clock=the_clock,
            faults=faults,
            broker_accounts=accounts,
        )
        app.state.parts = built
        # The operator API's authentication middleware and providers look here.
        app.state.api_keys, app.state.fleet = built.api_keys, built.fleet
        app.state.stickers = built.stickers
        await built.webhooks.ensure_registered(app.state.vipps)
        yield

    @contextlib.asynccontextmanager
    async def background(app: Litestar) -> AsyncIterator[None]:
        parts: CloudParts = app.state.parts
        tasks = [asyncio.create_task(coro) for coro in parts.background_work()]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await parts.vends.aclose()

    webhook = webhook_handler(settings.webhooks.path)
    return Litestar(
        route_handlers=[
            # The customer's pages and the Vipps webhook are no part of the operator API's
            # documentation: HTML for phones, and a contract Vipps documents.
            Router("/", route_handlers=[CustomerController, webhook], include_in_schema=False),
            healthz,
            *operator_routers(),
        ],
        dependencies={
            "customers": Provide(provide_customers, sync_to_thread=False),
            "webhooks": Provide(provide_webhooks, sync_to_thread=False),
        },
        exception_handlers={Exception: on_error},
        before_send=[add_security_headers],
        lifespan=[database, vipps, parts, background],
        openapi_config=OPENAPI,
        plugins=[StrictStructSchemas()],
    )


def cloud_filters(tree: TopicTree, *, shared: bool) -> list[TopicFilter]:
    """Events and telemetry shared between replicas when the broker can; status plainly.

    Every replica takes every status: Mosquitto sends no retained message to a shared
    subscription, and a status is idempotent (ordered by boot and seq) anyway. With shared
    events every replica also takes every pong plainly: the one that pinged is waiting for it
    (without sharing, the events filter already brings them all).
    """
    group = "cloud" if shared else None
    filters = [tree.events_filter(group), tree.telemetry_filter(group), tree.status_filter()]
    if group is not None:
        filters.append(tree.pong_filter())
    return filters

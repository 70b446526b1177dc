"""``vendgate cloud``: serve the fleet backend, migrate its database, add machines.

Configuration comes from ``VENDGATE_*`` variables (docs/cloud.md): ``VENDGATE_DATABASE_URL``,
``VENDGATE_MQTT_URL``, ``VENDGATE_PUBLIC_URL``, ``VENDGATE_VIPPS_*`` and the timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import socket
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from vendgate import _loop
from vendgate.cloud.faults import Faults, no_faults

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

SLOT_FORMAT = "ITEM:NAME:PRICE[:VAT]"
DATABASE_URL_FORMS = "sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER:PASSWORD@HOST/DB"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cloud",
        help="the fleet backend: serve, migrate, add-machine, create-key",
        description="The vendgate cloud (Litestar). Settings come from VENDGATE_* variables.",
    )
    actions = parser.add_subparsers(dest="cloud_command", metavar="ACTION", required=True)

    serve = actions.add_parser(
        "serve",
        help="run the HTTP app, MQTT listener and reconciler",
        description="Prints its base URL http://HOST:PORT as the first line once it serves.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind, 0 = any free port")
    serve.set_defaults(handler=run_serve)

    migrate = actions.add_parser("migrate", help="bring the database schema to the latest")
    migrate.set_defaults(handler=run_migrate)

    add = actions.add_parser(
        "add-machine",
        help="create or replace a machine and its planogram",
        description="Example: vendgate cloud add-machine m1 'Lobby' --slot 11:Cola:2500:1500",
    )
    add.add_argument("machine_id", help="the machine id (= its MQTT username)")
    add.add_argument("name", help="a name customers see")
    add.add_argument(
        "--slot",
        action="append",
        default=[],
        metavar=SLOT_FORMAT,
        help="price in minor units, VAT in hundredths of a percent (default 2500 = 25 %%)",
    )
    add.add_argument("--currency", default="NOK")
    add.add_argument("--callback-qr", help="the machine's merchant-callback QR id, if any")
    add.add_argument(
        "--price-mode",
        choices=("planogram", "vmc"),
        default="planogram",
        help="who sets prices: the slots above (default; the machine's own prices are ignored) "
        "or the machine's own prices (vmc)",
    )
    add.add_argument(
        "--vat",
        type=vat_rate,
        default=2500,
        metavar="RATE",
        help="VAT of items the slots do not list (vmc prices), hundredths of a percent (2500)",
    )
    add.set_defaults(handler=run_add_machine)

    key = actions.add_parser(
        "create-key",
        help="create an operator API key (the first one; then POST /api/v1/keys)",
        description=(
            "Prints the new key alone on stdout (for scripts), what it is on stderr. Scopes: "
            "read (look), machines (change machines), money (refunds), admin (API keys). "
            "Example: vendgate cloud create-key --name laptop --scope read,machines,admin"
        ),
    )
    key.add_argument("--name", required=True, help="who or what holds the key")
    key.add_argument(
        "--scope",
        action="append",
        required=True,
        help="read, machines, money, admin; repeat or separate with commas",
    )
    key.set_defaults(handler=run_create_key)


def run_migrate(args: argparse.Namespace) -> int:
    from vendgate.cloud.db import upgrade_to_head
    from vendgate.cloud.settings import CloudSettings

    async def migrate() -> None:
        engine = await open_database(CloudSettings.from_env().database.url)
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    print("database is at the latest revision")
    return 0


async def open_database(url: str) -> AsyncEngine:
    """An engine on ``url`` that has connected once: a database we cannot use is one line."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidRequestError

    from vendgate.cli import CommandError, database_error_text, os_error_text
    from vendgate.cloud.db import create_engine

    def refused(exc: Exception) -> CommandError:
        why = os_error_text(exc) if isinstance(exc, OSError) else database_error_text(exc)
        return CommandError(f"cannot use the database {shown_url(url)}: {why}")

    try:
        engine = create_engine(url)
    except (ArgumentError, InvalidRequestError, ImportError) as exc:
        # Not a URL, an unknown dialect, a driver not installed or not an asyncio one.
        why = f"{database_error_text(exc)} (want {DATABASE_URL_FORMS})"
        raise CommandError(f"VENDGATE_DATABASE_URL: {why}") from exc
    except OSError as exc:  # the SQLite file's folder cannot be made
        raise refused(exc) from exc
    try:
        async with engine.connect():
            pass
    except (DBAPIError, OSError) as exc:
        await engine.dispose()
        raise refused(exc) from exc
    return engine


def shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def parse_slot(text: str) -> Any:
    """``--slot ITEM:NAME:PRICE[:VAT]`` as a SlotSpec; its bounds are SlotSpec's own."""
    from vendgate.cli import USAGE_EXIT, CommandError
    from vendgate.cloud.machines import SlotSpec

    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise CommandError(f"--slot {text!r}: want {SLOT_FORMAT}", USAGE_EXIT)
    numbers = dict(zip(("ITEM", "PRICE", "VAT"), [parts[0], *parts[2:]], strict=False))
    for label, value in numbers.items():
        if not re.fullmatch(r"-?[0-9]+", value):
            raise CommandError(
                f"--slot {text!r}: {label} must be a whole number, got {value!r}", USAGE_EXIT
            )
    vat = int(parts[3]) if len(parts) == 4 else 2500
    return SlotSpec(item=int(parts[0]), name=parts[1], price=int(parts[2]), vat_rate=vat)


def vat_rate(text: str) -> int:
    """``--vat``: hundredths of a percent, 0..10000 (2500 = 25 %)."""
    if not text.isdigit() or int(text) > 10_000:
        raise argparse.ArgumentTypeError(f"want 0..10000 (hundredths of a percent), got {text!r}")
    return int(text)


def run_add_machine(args: argparse.Namespace) -> int:
    """A thin client of the operator API's own service (``Fleet``): the same checks, the same
    writes, the broker told the same way; a new machine's broker password is shown once."""
    import dataclasses

    from vendgate.cloud.errors import Conflict
    from vendgate.cloud.machines import MachineBody, SlotBody, machine_spec
    from vendgate.cloud.settings import CloudSettings
    from vendgate.protocol.mqtt import validate_machine_id

    # All of what was typed is checked before the database is opened.
    validate_machine_id(args.machine_id)
    slots = [SlotBody(**dataclasses.asdict(parse_slot(text))) for text in args.slot]
    body = MachineBody(
        id=args.machine_id,
        name=args.name,
        slots=slots,
        currency=args.currency,
        callback_qr_id=args.callback_qr,
        price_mode=args.price_mode,
        vat_rate=args.vat,
    )
    machine_spec(body, CloudSettings.from_env().fleet.max_price)  # the Fleet's own checks

    async def add(fleet: Any) -> None:
        try:
            created = await fleet.create(body)
        except Conflict:
            await fleet.replace(body)
            print(f"machine {args.machine_id} replaced: {len(slots)} slots; its login is unchanged")
            return
        login = created.mqtt
        print(f"machine {args.machine_id} created with {len(slots)} slots")
        print(f"broker login (shown once): username {login.username} password {login.password}")

    asyncio.run(with_fleet(add))
    return 0


async def with_fleet(work: Any) -> None:
    """Run ``work(fleet)`` against the database and broker the settings name."""
    from vendgate.cloud.broker import accounts_for
    from vendgate.cloud.db import session_factory, upgrade_to_head
    from vendgate.cloud.machines import Fleet, FleetPolicy
    from vendgate.cloud.settings import CloudSettings
    from vendgate.protocol import SystemClock
    from vendgate.protocol.mqtt import TopicTree

    settings = CloudSettings.from_env()
    engine = await open_database(settings.database.url)
    try:
        await upgrade_to_head(engine)
        policy = FleetPolicy(
            public_url=settings.public_url,
            machine_mqtt_url=settings.machine_mqtt_url,
            max_price=settings.fleet.max_price,
            claim_minutes=settings.fleet.claim_minutes,
        )
        accounts = accounts_for(settings.fleet.broker_admin_url, settings.mqtt.prefix)
        tree = TopicTree(settings.mqtt.prefix)
        await work(Fleet(session_factory(engine), SystemClock(), tree, accounts, policy))
    finally:
        await engine.dispose()


def run_create_key(args: argparse.Namespace) -> int:
    """The first API key (later ones: ``POST /api/v1/keys`` with an ``admin`` key)."""
    from vendgate.cloud.db import session_factory, upgrade_to_head
    from vendgate.cloud.operators import ApiKeys
    from vendgate.cloud.settings import CloudSettings
    from vendgate.protocol import SystemClock

    scopes = [scope for text in args.scope for scope in text.replace(",", " ").split()]

    async def create() -> Any:
        settings = CloudSettings.from_env()
        engine = await open_database(settings.database.url)
        try:
            await upgrade_to_head(engine)
            return await ApiKeys(session_factory(engine), SystemClock()).create(args.name, scopes)
        finally:
            await engine.dispose()

    created = asyncio.run(create())
    print(created.key)
    print(
        f"key {created.id} ({created.name}: {' '.join(created.scopes)}); shown once, keep it "
        "secret; send it as 'Authorization: Bearer <key>'",
        file=sys.stderr,
    )
    return 0


def run_serve(args: argparse.Namespace, *, faults: Faults = no_faults) -> int:
    """``vendgate cloud serve``; the crash tests' entry point passes ``faults``."""
    from vendgate.cloud.settings import CloudSettings

    settings = CloudSettings.from_env()
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"vendgate cloud: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return _loop.run(serve(sock, settings, faults))


async def serve(sock: socket.socket, settings: Any, faults: Faults = no_faults) -> int:
    import uvicorn

    from vendgate.cloud.app import create_app

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # Exit 0 after a clean shutdown on SIGTERM rather than re-raising the signal.
            yield

    await (await open_database(settings.database.url)).dispose()  # one line if unusable
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    app = create_app(settings, faults=faults)
    # The app's lifespan runs here, not in uvicorn: a failure to start raises to the
    # command line (one line for known errors) instead of uvicorn logging a traceback.
    server = Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
    async with app.lifespan():
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.02)
        if server.started:
            print(url, flush=True)
        await serving
    return 0 if server.started else 1

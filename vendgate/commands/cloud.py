"""``vendgate cloud``: serve the fleet backend, migrate its database, add machines.

Configuration comes from ``VENDGATE_*`` variables (docs/cloud.md): ``VENDGATE_DATABASE_URL``,
``VENDGATE_MQTT_URL``, ``VENDGATE_PUBLIC_URL``, ``VENDGATE_VIPPS_*`` and the timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cloud",
        help="the fleet backend: serve, migrate, add-machine",
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
        metavar="ITEM:NAME:PRICE[:VAT]",
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


def run_migrate(args: argparse.Namespace) -> int:
    from vendgate.cloud.db import create_engine, upgrade_to_head
    from vendgate.cloud.settings import CloudSettings

    async def migrate() -> None:
        engine = create_engine(CloudSettings.from_env().database.url)
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    print("database is at the latest revision")
    return 0


def parse_slot(text: str) -> Any:
    from vendgate.cloud.machines import SlotSpec

    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError(f"slot must be ITEM:NAME:PRICE[:VAT], got {text!r}")
    vat = int(parts[3]) if len(parts) == 4 else 2500
    return SlotSpec(item=int(parts[0]), name=parts[1], price=int(parts[2]), vat_rate=vat)


def vat_rate(text: str) -> int:
    """``--vat``: hundredths of a percent, 0..10000 (2500 = 25 %)."""
    if not text.isdigit() or int(text) > 10_000:
        raise argparse.ArgumentTypeError(f"want 0..10000 (hundredths of a percent), got {text!r}")
    return int(text)


def run_add_machine(args: argparse.Namespace) -> int:
    from vendgate.cloud.clock import system_clock
    from vendgate.cloud.db import create_engine, session_factory, transaction, upgrade_to_head
    from vendgate.cloud.machines import upsert_machine
    from vendgate.cloud.settings import CloudSettings
    from vendgate.protocol.mqtt import TopicTree

    try:
        slots = [parse_slot(text) for text in args.slot]
    except (argparse.ArgumentTypeError, ValueError) as exc:
        print(f"vendgate cloud add-machine: {exc}", file=sys.stderr)
        return 2

    async def add() -> None:
        settings = CloudSettings.from_env()
        engine = create_engine(settings.database.url)
        try:
            await upgrade_to_head(engine)
            async with transaction(session_factory(engine)) as db:
                await upsert_machine(
                    db,
                    args.machine_id,
                    args.name,
                    slots,
                    system_clock(),
                    currency=args.currency,
                    callback_qr_id=args.callback_qr,
                    price_mode=args.price_mode,
                    vat_rate=args.vat,
                    tree=TopicTree(settings.mqtt.prefix),
                )
        finally:
            await engine.dispose()

    asyncio.run(add())
    print(f"machine {args.machine_id} has {len(slots)} slots")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"vendgate cloud: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return asyncio.run(serve(sock))


async def serve(sock: socket.socket) -> int:
    import uvicorn

    from vendgate.cloud.app import create_app

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # Exit 0 after a clean shutdown on SIGTERM rather than re-raising the signal.
            yield

    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    config = uvicorn.Config(create_app(), log_level="warning", lifespan="on")
    server = Server(config)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.02)
    if server.started:
        print(url, flush=True)
    await serving
    return 0 if server.started else 1

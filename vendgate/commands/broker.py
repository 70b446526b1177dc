"""``vendgate broker``: run the embedded amqtt broker until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "broker",
        help="run the embedded MQTT broker (amqtt) on loopback",
        description=(
            "Run the embedded amqtt broker (MQTT 3.1.1, anonymous, loopback only; a client "
            "that gives a username must use it as its client id). Prints its "
            "URL mqtt://HOST:PORT as the first line of output once it accepts connections; "
            "Ctrl-C or SIGTERM stops it cleanly. For production use Mosquitto with the repo's "
            "mosquitto.conf."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1883, help="port to bind, 0 = any free port")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(serve(args.host, args.port))


async def serve(host: str, port: int) -> int:
    from vendgate.broker import BrokerStartError, EmbeddedBroker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        broker = EmbeddedBroker(host, port)
        await broker.start()
    except BrokerStartError as exc:
        print(f"vendgate broker: {exc}", file=sys.stderr)
        return 1
    try:
        print(broker.url, flush=True)
        await stop.wait()
    finally:
        await broker.stop()
    return 0

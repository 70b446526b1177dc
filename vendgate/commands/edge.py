"""``vendgate edge``: run one machine's edge agent until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

from vendgate.edge import Faults, no_faults

DESCRIPTION = """\
Run the edge agent of one vending machine: the MDB cashless reader on the vend board's serial
link, and MQTT to the cloud. Every vend report goes into a SQLite outbox in --data-dir first and
is re-sent until the cloud acknowledges it, across reconnects and restarts. Every setting is a
flag or a VENDGATE_* environment variable (the flag wins); put the MQTT password in
VENDGATE_MQTT_PASSWORD rather than on the command line. SIGTERM or Ctrl-C publishes 'offline' and
stops cleanly. Logs go to stderr, one key=value line per event. See docs/edge-agent.md.
"""

EPILOG = """\
example:
  VENDGATE_MQTT_PASSWORD=m1-secret vendgate edge --machine-id m1 \\
      --mqtt-url mqtts://broker.example.com --serial /dev/ttyUSB0 --data-dir /var/lib/vendgate-edge
"""


def register(subparsers: Any) -> None:
    from vendgate.edge import add_arguments

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "edge",
        help="run a vending machine's edge agent (MDB reader + MQTT)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, *, faults: Faults = no_faults) -> int:
    """``vendgate edge``; the crash tests' entry point passes ``faults``."""
    from vendgate.edge import ConfigError, EdgeConfig

    try:
        config = EdgeConfig.load(vars(args), os.environ)
    except ConfigError as error:
        print(f"vendgate edge: {error}", file=sys.stderr)
        return 2
    return asyncio.run(serve(config, faults))


async def serve(config: Any, faults: Faults = no_faults) -> int:
    from vendgate.edge import build_agent

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    agent = build_agent(config, faults=faults)
    await agent.run(stop)
    return 0

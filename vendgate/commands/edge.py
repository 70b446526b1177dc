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


DEFAULT_CONFIG = "/etc/vendgate/edge.env"
CLAIM_DESCRIPTION = """\
Trade the one-time claim code an operator created (POST /api/v1/machines/{id}/claim-code) for
this machine's broker login, and write it to the agent's config file: VENDGATE_MACHINE_ID,
VENDGATE_MQTT_URL, VENDGATE_MQTT_PASSWORD and VENDGATE_MQTT_PREFIX, readable by its owner only.
Other lines in the file are kept. A code works once, for minutes; a second claim needs a new code.

example:
  vendgate edge claim --cloud https://vend.example.com --code 7KQ2M-XW9RT
  vendgate edge --config /etc/vendgate/edge.env --serial /dev/ttyUSB0
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
    commands = parser.add_subparsers(dest="edge_command", metavar="claim")
    claim = commands.add_parser(
        "claim",
        help="fetch this machine's broker login with a claim code and write the config file",
        description=CLAIM_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    claim.add_argument("--cloud", required=True, metavar="URL", help="the cloud's public URL")
    claim.add_argument("--code", required=True, help="the claim code the operator was given")
    claim.add_argument(
        "--config",
        dest="claim_config",
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"the config file to write (mode 0600; default {DEFAULT_CONFIG})",
    )
    claim.set_defaults(handler=run_claim)


def run_claim(args: argparse.Namespace) -> int:
    """``vendgate edge claim``: one line on success or failure, never a traceback."""
    from pathlib import Path

    from vendgate.edge import ClaimError, claim

    path = Path(args.claim_config)
    try:
        machine_id = claim(args.cloud, args.code, path)
    except (ClaimError, OSError) as error:
        print(f"vendgate edge claim: {error}", file=sys.stderr)
        return 1
    print(f"claimed machine {machine_id}; its broker login is in {path} (mode 0600)")
    print(f"start it with: vendgate edge --config {path} --serial /dev/ttyUSB0")
    return 0


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

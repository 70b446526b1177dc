"""``vendgate demo``: broker, Vipps simulator, cloud and three machines in one process, with
simulated customers; exit status 0 when every purchase met the money rules (docs/demo.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any, TextIO

# Their INFO lines (one per MQTT event, vend step, HTTP call, migration) would bury the demo's
# own story; warnings and errors still show.
COMPONENT_LOGGERS = (
    "vendgate.edge",
    "vendgate.cloud",
    "vendgate.boardsim",
    "vendgate.broker",
    "uvicorn",
    "alembic",
)
# The broker's refusals are warnings, but the demo tries strangers on purpose and says itself
# what the broker answered; its errors (a login store that fails) still show.
REFUSALS_LOGGER = "vendgate._amqtt_identity"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="everything in one process: broker, Vipps simulator, cloud, machines, customers",
        description=(
            "Start the embedded tier (amqtt broker, SQLite, the Vipps simulator, the cloud) and "
            "three simulated machines (board simulator + edge agent) in one process, then send "
            "customers: a normal purchase, a jammed motor, a walk-away timeout and a scan of a "
            "busy machine. Prints progress and a summary; exit status 0 when every purchase met "
            "the money rules, 1 otherwise."
        ),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object as the last line of stdout (progress goes to stderr)",
    )
    parser.add_argument(
        "--purchases",
        type=int,
        default=0,
        metavar="N",
        help="N more normal purchases, spread over the machines (default 0)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also show the components' own INFO log lines"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.purchases < 0:
        print("vendgate demo: --purchases must be 0 or more", file=sys.stderr)
        return 2
    quiet_components(verbose=args.verbose)  # first: some log while being imported
    from vendgate.demo import DemoOptions, run_demo

    out = sys.stderr if args.json else sys.stdout
    try:
        report = asyncio.run(run_demo(DemoOptions(purchases=args.purchases), say(out)))
    except Exception as exc:  # a part would not start (customers' failures are in the report)
        logging.getLogger("vendgate.demo").exception("vendgate demo could not run")
        if args.json:
            error = f"{type(exc).__name__}: {exc}"
            print(json.dumps({"ok": False, "purchases": [], "error": error}), flush=True)
        return 1
    print(f"\n{report.table()}\n\n{report.verdict()}", file=out, flush=True)
    if args.json:
        print(report.json(), flush=True)
    return 0 if report.ok else 1


def quiet_components(*, verbose: bool) -> None:
    if not verbose:
        for name in COMPONENT_LOGGERS:
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.root.level))
        logging.getLogger(REFUSALS_LOGGER).setLevel(max(logging.ERROR, logging.root.level))


def say(out: TextIO) -> Any:
    def line(text: str) -> None:
        print(text, file=out, flush=True)

    return line

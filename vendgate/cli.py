"""The ``vendgate`` command line: one command, one module per subcommand.

Every module in ``vendgate.commands`` exposes ``register(subparsers)``, which adds its parser and
sets ``handler`` (a callable taking the parsed arguments and returning an exit code). Modules are
found by walking the package, so adding a subcommand is adding one file. They keep their heavy
imports inside the handler, so ``vendgate --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from vendgate import __version__, commands

# Libraries that log every state change at INFO; their chatter hides ours.
NOISY_LOGGERS = ("transitions", "amqtt", "hpack", "httpx", "httpcore", "aiosqlite")


def command_modules() -> list[str]:
    return sorted(f"{commands.__name__}.{m.name}" for m in pkgutil.iter_modules(commands.__path__))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vendgate",
        description="Pay a vending machine with Vipps MobilePay: edge agent, cloud, simulators.",
    )
    parser.add_argument("--version", action="version", version=f"vendgate {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much to log on stderr (default: INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_modules():
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.log_level != "DEBUG":
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        return 130

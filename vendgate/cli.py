"""The ``vendgate`` command line: one command, one module per subcommand.

Every module in ``vendgate.commands`` exposes ``register(subparsers)``, which adds its parser and
sets ``handler`` (a callable taking the parsed arguments and returning an exit code). Modules are
found by walking the package, so adding a subcommand is adding one file. They keep their heavy
imports inside the handler, so ``vendgate --help`` stays fast.

A user's mistake or a broken environment is one line on stderr, ``vendgate: error: ...``, never
a traceback: a handler raises ``CommandError``, and ``main`` also reports the known kinds of
error (``user_error``) so. Anything else is a bug and keeps its traceback; ``--log-level DEBUG``
logs the traceback of a reported error too.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import re
import sys
from collections.abc import Sequence

from vendgate import __version__, commands

# Libraries that log every state change at INFO; their chatter hides ours. (alembic's plugin
# loader logs seven lines whenever the cloud's database code is imported.)
NOISY_LOGGERS = (
    "transitions",
    "amqtt",
    "hpack",
    "httpx",
    "httpcore",
    "aiosqlite",
    "alembic.runtime.plugins",
)
USAGE_EXIT = 2  # as argparse: what was typed is wrong
FAILURE_EXIT = 1  # what was typed is fine, but something it needs is not

log = logging.getLogger("vendgate.cli")


class CommandError(Exception):
    """A command cannot go on for a reason its user can fix; ``main`` prints it as one line."""

    def __init__(self, message: str, exit_code: int = FAILURE_EXIT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def user_error(exc: BaseException) -> CommandError | None:
    """``exc`` as one line for the user when it is a known kind of error, else None (a bug).

    Known: ``CommandError``; invalid input refused by our own validation (the MQTT contract's
    errors, the cloud's error tree: ``ValueError`` subclasses, usage errors); files, sockets and
    connections (``OSError``); the database (SQLAlchemy's driver and URL errors). A group of
    exceptions (anyio, TaskGroup) is reported by its first leaf when all of them are known.
    """
    if isinstance(exc, BaseExceptionGroup):
        leaves = [user_error(inner) for inner in exc.exceptions]
        return leaves[0] if leaves and all(leaves) else None
    if isinstance(exc, CommandError):
        return exc
    if isinstance(exc, OSError):
        return CommandError(os_error_text(exc))
    # Only modules that were imported can have raised their errors; no import here is new.
    modules = sys.modules
    validation = tuple(
        getattr(modules[name], cls)
        for name, cls in (
            ("vendgate.protocol.mqtt", "ContractError"),
            ("vendgate.cloud.errors", "VendgateError"),
        )
        if name in modules
    )
    if validation and isinstance(exc, validation):
        return CommandError(first_line(str(exc)), USAGE_EXIT)
    sqlalchemy = modules.get("sqlalchemy.exc")
    if sqlalchemy is not None and isinstance(exc, sqlalchemy.DBAPIError | sqlalchemy.ArgumentError):
        return CommandError(f"database: {database_error_text(exc)}")
    return None


def os_error_text(exc: OSError) -> str:
    """``No such file or directory: '/x'`` rather than ``[Errno 2] No such file ...``."""
    if exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename!r}"
    return first_line(exc.strerror or str(exc))


def database_error_text(exc: Exception) -> str:
    """The driver's own words, without SQLAlchemy's class prefix, SQL and link lines."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    return first_line(re.sub(r"^(<class '[^']+'>: |\([\w.]+\) )", "", text))


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "(no detail)"


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
    except Exception as exc:
        error = user_error(exc)
        if error is None:
            raise
        log.debug("the error in full", exc_info=exc)
        print(f"vendgate: error: {error}", file=sys.stderr, flush=True)
        return error.exit_code

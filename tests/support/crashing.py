"""A test-only entry point: ``vendgate cloud serve`` or ``vendgate edge`` that dies at a point.

    python tests/support/crashing.py --crash-at after_capture cloud serve --port 8000
    python tests/support/crashing.py --crash-at after_outbox_write:evt/dispensed edge

Everything after ``--crash-at POINT`` is a ``vendgate`` command line, parsed by vendgate's own
parser and run by the command's own handler, so flags, environment and behaviour are those of
the real command; the one difference is the ``faults`` the handler passes to ``create_app`` or
``build_agent``: at POINT it prints one line to stderr and ends the process with
``os._exit(137)`` (what a SIGKILL looks like: no cleanup, no flushing, no goodbye). The points
are the programs' documented ones (``vendgate.cloud.faults.POINTS``,
``vendgate.edge.FAULT_POINTS``). This is the only place the crash tests' exit lives; the
programs themselves never read a variable or exit for it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from vendgate.cli import NOISY_LOGGERS, build_parser, user_error
from vendgate.cloud.faults import POINTS as CLOUD_POINTS
from vendgate.commands import cloud, edge
from vendgate.edge import FAULT_POINTS as EDGE_POINTS

EXIT_STATUS = 137  # what a SIGKILL looks like to a shell
# How a test starts it: this file run by the test's own interpreter.
COMMAND = (sys.executable, str(Path(__file__).resolve()))

Faults = Callable[[str], None]
# The commands that take ``faults``, and the points each program has.
HANDLERS: dict[Callable[..., int], tuple[str, ...]] = {
    cloud.run_serve: CLOUD_POINTS,
    edge.run: EDGE_POINTS,
}


def crash_at(point: str) -> Faults:
    """Faults that end the process at ``point`` and let every other point pass."""

    def faults(reached: str) -> None:
        if reached == point:
            print(f"crashing: {point} reached, exiting with {EXIT_STATUS}", file=sys.stderr)
            sys.stderr.flush()
            os._exit(EXIT_STATUS)

    return faults


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="crashing.py",
        description="Run a vendgate command that exits with 137 at a fault point (tests only).",
    )
    parser.add_argument("--crash-at", required=True, metavar="POINT")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="a vendgate command line")
    ours = parser.parse_args(argv)
    args = build_parser().parse_args(ours.command)
    handler = getattr(args, "handler", None)
    points = HANDLERS.get(handler) if handler is not None else None
    if points is None:
        parser.error("the command must be `cloud serve` or `edge`")
    if ours.crash_at not in points:
        parser.error(f"--crash-at {ours.crash_at!r}: the points are {', '.join(points)}")
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return handler(args, faults=crash_at(ours.crash_at))
    except Exception as exc:
        error = user_error(exc)
        if error is None:
            raise
        print(f"crashing.py: error: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    raise SystemExit(main())

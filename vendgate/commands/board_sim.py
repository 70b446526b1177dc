"""``vendgate board-sim``: a simulated vend board (VMC + machine) on a pty, for the edge to open."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vendgate.boardsim import BoardSim

EPILOG = """\
output: the first line on stdout is the pty device path for the edge to open, e.g.
  /dev/pts/7
With --control HOST:PORT the second line is the address it listens on ("control HOST:PORT",
useful with port 0). Logs go to stderr.

keypad control protocol (--control HOST:PORT for TCP, --control - for stdin), one answer line
per command, "ok ..." or "error ...":
  select N            the customer presses selection N
  walk-away           the customer leaves; the reader's selection timeout ends the session
  cancel              the customer presses cancel (SESSION COMPLETE)
  jam N               the next vend of slot N fails (VEND FAILURE)
  power-cycle [S]     cut the board's power for S seconds (default 3): the bus goes silent
  status              power, reader state, session, credit, last vend
  help

--slots FILE: JSON or TOML, e.g. {"slots": [{"number": 1, "item": 101, "name": "Cola",
"price": 2500, "stock": 5}]} (prices in øre; item and stock optional), or --slot flags:
--slot 1:Cola:2500 --slot 2:Water:2000:10:102. See docs/board-sim.md.
Ctrl-C or SIGTERM stops cleanly.
"""


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "board-sim",
        help="simulated vend board (MDB VMC) on a pty",
        description=(
            "Run a vending machine controller that polls an MDB cashless device over a pty, "
            "with slots, motors and a keypad you drive over a line protocol."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--slots", type=Path, metavar="FILE", help="planogram (JSON or TOML)")
    parser.add_argument(
        "--slot",
        action="append",
        default=[],
        metavar="N:NAME:PRICE[:STOCK[:ITEM]]",
        help="a slot (repeatable; added to --slots, or replacing the built-in planogram)",
    )
    parser.add_argument(
        "--capture", type=Path, metavar="FILE", help="append every bus block (mdb decode format)"
    )
    parser.add_argument("--control", metavar="HOST:PORT", help="keypad protocol: TCP or '-'")
    parser.add_argument(
        "--poll-interval", type=float, default=0.2, metavar="S", help="POLL every S s (0.2)"
    )
    parser.add_argument("--jam-rate", type=float, default=0.0, help="motor jam probability (0)")
    parser.add_argument("--multivend", action="store_true", help="allow several vends/session")
    parser.add_argument("--dispense-time", type=float, default=0.5, metavar="S", help="(0.5 s)")
    parser.add_argument("--seed", type=int, help="seed the jam dice (reproducible runs)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from vendgate.boardsim import SlotError

    try:
        sim = build_sim(args)
        control = parse_control(args.control)
    except (SlotError, OSError, ValueError) as exc:
        print(f"vendgate board-sim: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(sim, control))


def build_sim(args: argparse.Namespace) -> BoardSim:
    import random

    from vendgate.boardsim import (
        DEFAULT_SLOTS,
        BoardSim,
        Machine,
        VmcConfig,
        load_slots,
        parse_slot,
    )

    flagged = tuple(parse_slot(text) for text in args.slot)
    from_file = load_slots(args.slots) if args.slots is not None else ()
    slots = from_file + flagged or DEFAULT_SLOTS
    machine = Machine(slots, jam_rate=args.jam_rate, rng=random.Random(args.seed))
    if args.poll_interval <= 0 or args.dispense_time < 0:
        raise ValueError("--poll-interval must be positive and --dispense-time not negative")
    config = VmcConfig(
        poll_interval_s=args.poll_interval,
        multivend=args.multivend,
        dispense_s=args.dispense_time,
    )
    return BoardSim(machine, config, capture=args.capture)


def parse_control(text: str | None) -> tuple[str, int] | str | None:
    """None, ``"-"`` (stdin) or ``(host, port)``."""
    if text is None or text == "-":
        return text
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--control wants HOST:PORT or '-', not {text!r}")
    return host or "127.0.0.1", int(port)


async def serve(sim: BoardSim, control: tuple[str, int] | str | None) -> int:
    from vendgate.boardsim import serve_control, serve_stdin

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with sim:
        print(sim.device_path, flush=True)
        if isinstance(control, tuple):
            try:
                server = await serve_control(sim, *control)
            except OSError as exc:
                print(f"vendgate board-sim: cannot listen on {control}: {exc}", file=sys.stderr)
                return 1
            host, port = server.sockets[0].getsockname()[:2]
            print(f"control {host}:{port}", flush=True)
            async with server:
                await stop.wait()
        elif control == "-":
            reader = asyncio.create_task(serve_stdin(sim))
            await stop.wait()
            reader.cancel()
        else:
            await stop.wait()
    return 0

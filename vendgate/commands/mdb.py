"""``vendgate mdb decode``: read an MDB capture (one block per line) and print it as JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from vendgate.protocol.mdb import Dialect

DECODE_EPILOG = """\
input: one block per line, a direction word then hex bytes, '*' after a byte whose mode bit is
set:
  VMC 13* 00 00 0A 00 06 23      (VEND REQUEST price 10 item 6, CHK 23)
  CD 05 00 0A 0F*                (VEND APPROVED 10)
Blank lines and lines starting with '#' are skipped.

output: one JSON object per block line:
  {"dir": "VMC", "checksum_ok": true, "messages": [{"name": "VEND_REQUEST", "price": 10, ...}]}
or, for a line that cannot be decoded (the run goes on):
  {"error": "...", "line": N, "text": "..."}

exit status: 0 when the input was read (even with undecodable lines), 1 when FILE cannot be
opened.
"""


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "mdb",
        help="MDB cashless tools (decode captures)",
        description="Tools for the MDB cashless protocol spoken between vend board and edge.",
    )
    parser.set_defaults(handler=lambda _args: _print_help(parser))
    actions = parser.add_subparsers(dest="mdb_command", metavar="ACTION")
    decode = actions.add_parser(
        "decode",
        help="decode an MDB capture to JSON lines",
        description="Decode MDB blocks (VMC commands, cashless replies) into JSON, one per line.",
        epilog=DECODE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    decode.add_argument("file", nargs="?", metavar="FILE", help="capture file (default: stdin)")
    decode.add_argument(
        "--level",
        type=int,
        choices=[1, 2, 3],
        help="the VMC's feature level, to split multi-message replies exactly (default: guess)",
    )
    decode.add_argument(
        "--expanded",
        action="store_true",
        help="level 3 with 32-bit money (with --level 3)",
    )
    decode.set_defaults(handler=run_decode)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_decode(args: argparse.Namespace) -> int:
    from vendgate.protocol.mdb import Dialect

    dialect = Dialect(level=args.level, expanded=args.expanded)
    if args.file is None or args.file == "-":
        return decode_stream(sys.stdin, dialect)
    try:
        with open(args.file, encoding="utf-8", errors="replace") as stream:
            return decode_stream(stream, dialect)
    except OSError as exc:
        print(f"vendgate mdb decode: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1


def decode_stream(stream: TextIO, dialect: Dialect) -> int:
    from vendgate.protocol.mdb import decode_capture

    for record in decode_capture(stream, dialect=dialect):
        print(json.dumps(record), flush=True)
    return 0

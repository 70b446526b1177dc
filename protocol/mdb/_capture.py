"""The text capture format: one block per line, ``VMC 13* 00 00 0A 00 06 23`` / ``CD 05 00 0A 0F*``.

A line is a direction word (``VMC`` or ``CD``) then hex bytes separated by spaces, ``*`` after a
byte whose mode bit is set. Blank lines and ``#`` comments are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from ._base import ANY_DIALECT, Dialect
from ._codec import Block, Direction, Word, decode_block
from ._errors import MdbError

_BYTE_TOKEN = re.compile(r"([0-9A-Fa-f]{1,2})(\*?)")


class CaptureLineError(ValueError):
    """A capture line that is not ``VMC|CD`` followed by hex bytes."""


def format_capture_line(direction: Direction | str, words: Iterable[tuple[int, bool]]) -> str:
    """``VMC 13* 00 00 0A 00 06 23``: the inverse of ``parse_capture_line``."""
    name = Direction(direction).value
    return " ".join([name, *(f"{byte:02X}{'*' if mode else ''}" for byte, mode in words)])


def parse_capture_line(line: str) -> Block | None:
    """The block on one line, None for a blank or comment line; raises ``CaptureLineError``."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    head, *tokens = text.split()
    try:
        direction = Direction(head.upper())
    except ValueError:
        raise CaptureLineError(f"line must start with VMC or CD, not {head!r}") from None
    if not tokens:
        raise CaptureLineError(f"{direction.value} line has no bytes")
    return Block(direction, tuple(_parse_word(token) for token in tokens))


def _parse_word(token: str) -> Word:
    match = _BYTE_TOKEN.fullmatch(token)
    if match is None:
        raise CaptureLineError(f"{token!r} is not a hex byte (like 13 or 13*)")
    return Word(int(match.group(1), 16), match.group(2) == "*")


def decode_capture(
    lines: Iterable[str], *, dialect: Dialect = ANY_DIALECT
) -> Iterator[dict[str, object]]:
    """One record per block line: the decoded block, or ``{"error", "line", "text"}``."""
    for number, line in enumerate(lines, start=1):
        try:
            block = parse_capture_line(line)
            if block is None:
                continue
            yield decode_block(block, dialect=dialect).as_dict()
        except (CaptureLineError, MdbError) as exc:
            yield {"error": str(exc), "line": number, "text": line.rstrip("\r\n")}

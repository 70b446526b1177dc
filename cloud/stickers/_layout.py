"""Where everything goes on a sticker of a given size, in millimetres from its top left corner.

One layout for every output (PNG, SVG, PDF), so they look alike; each only translates
millimetres into its own unit. Text is measured with the bundled font.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from ._fonts import text_width
from ._sticker import Modules, Sticker, qr_modules

STICKER_SIZE_MM = (70.0, 90.0)  # width, height of one sticker on its own (PNG, SVG)
MARGIN = 4.0
GAP = 1.5
LINE_HEIGHT = 1.2  # of the em size
ASCENT = 0.93  # baseline below a line's top, of the em size (DejaVu's ascender)
NAME_SIZES = (8.0, 3.0)  # the name's largest and smallest em size: it shrinks to fit
NAME_LINES = 2
INSTRUCTION_SIZES = (3.2, 2.0)
ID_SIZES = (2.4, 1.6)
MIN_QR_MM = 20.0
MAX_SIDE_MM = 300.0
ELLIPSIS = "\u2026"
_SIZE_STEP = 0.25


@dataclass(frozen=True, slots=True)
class TextLine:
    text: str
    centre_x: float
    baseline: float
    size: float  # em size
    bold: bool
    width: float  # as measured with the bundled font


@dataclass(frozen=True, slots=True)
class QrSquare:
    x: float
    y: float
    side: float  # quiet zone included
    modules: Modules


@dataclass(frozen=True, slots=True)
class Layout:
    width: float
    height: float
    qr: QrSquare
    lines: tuple[TextLine, ...]


def check_size(width: float, height: float) -> None:
    """Raise ValueError unless a ``width`` x ``height`` mm sticker has room for its QR code."""
    if not (0 < width <= MAX_SIDE_MM and 0 < height <= MAX_SIDE_MM):
        raise ValueError(
            f"size_mm {width:g} x {height:g} is out of range: each side must be more than 0 "
            f"and at most {MAX_SIDE_MM:g} mm"
        )
    side = _qr_side(width, height)
    if side < MIN_QR_MM:
        raise ValueError(
            f"size_mm {width:g} x {height:g} is too small: its QR code would be {side:.1f} mm "
            f"wide, and at least {MIN_QR_MM:g} mm is needed"
        )


def layout(sticker: Sticker, width: float, height: float) -> Layout:
    check_size(width, height)
    text_width_mm = width - 2 * MARGIN
    name_top, name_height = MARGIN, _name_height(height)
    qr_top = name_top + name_height + GAP
    id_top = height - 0.75 * MARGIN - ID_SIZES[0] * LINE_HEIGHT
    instruction_top = id_top - GAP / 3 - INSTRUCTION_SIZES[0] * LINE_HEIGHT
    side = _qr_side(width, height)
    room = instruction_top - GAP - qr_top
    qr = QrSquare((width - side) / 2, qr_top + (room - side) / 2, side, qr_modules(sticker.url))
    size, names = fit(sticker.name, bold=True, width=text_width_mm, height=name_height)
    lines = _block(names, size, True, width / 2, name_top + (name_height - _tall(names, size)) / 2)
    for text, top, sizes in (
        (sticker.instruction, instruction_top, INSTRUCTION_SIZES),
        (sticker.machine_id, id_top, ID_SIZES),
    ):
        size, fitted = fit(
            text, bold=False, width=text_width_mm, height=math.inf, sizes=sizes, max_lines=1
        )
        lines += _block(fitted, size, False, width / 2, top)
    return Layout(width, height, qr, lines)


def _name_height(height: float) -> float:
    return min(max(0.16 * height, NAME_SIZES[0] * LINE_HEIGHT), 20.0)


def _qr_side(width: float, height: float) -> float:
    """What is left for the QR code once the margins and the text have their room."""
    text = _name_height(height) + (INSTRUCTION_SIZES[0] + ID_SIZES[0]) * LINE_HEIGHT
    spacing = MARGIN + 0.75 * MARGIN + 2 * GAP + GAP / 3
    return min(width - 2 * MARGIN, height - text - spacing)


def _tall(lines: list[str], size: float) -> float:
    return len(lines) * size * LINE_HEIGHT


def _block(
    lines: list[str], size: float, bold: bool, centre_x: float, top: float
) -> tuple[TextLine, ...]:
    return tuple(
        TextLine(
            text,
            centre_x,
            top + (index * LINE_HEIGHT + ASCENT) * size,
            size,
            bold,
            text_width(text, bold=bold, size=size),
        )
        for index, text in enumerate(lines)
        if text
    )


def fit(
    text: str,
    *,
    bold: bool,
    width: float,
    height: float,
    sizes: tuple[float, float] = NAME_SIZES,
    max_lines: int = NAME_LINES,
) -> tuple[float, list[str]]:
    """The largest em size (within ``sizes``) at which ``text`` wraps into at most ``max_lines``
    lines of at most ``width`` that stack no taller than ``height``; at the smallest size the
    text is cut with an ellipsis instead. Whitespace is collapsed."""
    words = text.split()
    largest, smallest = sizes
    steps = round((largest - smallest) / _SIZE_STEP)
    for size in (largest - step * _SIZE_STEP for step in range(steps + 1)):
        lines = _wrap(words, bold, size, width)
        if len(lines) <= max_lines and _tall(lines, size) <= height:
            return size, lines
    lines = _wrap(words, bold, smallest, width)
    if len(lines) > max_lines:
        last = " ".join(lines[max_lines - 1 :])
        lines = [*lines[: max_lines - 1], _ellipsize(last, bold, smallest, width)]
    return smallest, lines


def _wrap(words: list[str], bold: bool, size: float, width: float) -> list[str]:
    """Greedy word wrap; a word wider than a line is broken between characters."""
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, bold=bold, size=size) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while len(word) > 1 and text_width(word, bold=bold, size=size) > width:
            cut = _longest_fitting_prefix(word, bold, size, width)
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


def _longest_fitting_prefix(
    text: str, bold: bool, size: float, width: float, suffix: str = ""
) -> int:
    """How many characters of ``text`` (then ``suffix``) fit; at least 1, so wrapping moves on."""
    low, high = 1, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if text_width(text[:middle] + suffix, bold=bold, size=size) <= width:
            low = middle
        else:
            high = middle - 1
    return low


def _ellipsize(text: str, bold: bool, size: float, width: float) -> str:
    cut = _longest_fitting_prefix(text, bold, size, width, suffix=ELLIPSIS)
    return text[:cut].rstrip() + ELLIPSIS


def dark_runs(modules: Modules) -> Iterator[tuple[int, int, int]]:
    """(row, first column, length) of each horizontal run of dark modules: fewer shapes to draw."""
    for row, cells in enumerate(modules):
        start = None
        for column, dark in enumerate((*cells, False)):
            if dark and start is None:
                start = column
            elif not dark and start is not None:
                yield row, start, column - start
                start = None

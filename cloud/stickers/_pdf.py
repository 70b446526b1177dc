"""A4 print sheets of stickers (reportlab): vector QR codes, embedded fonts, cut marks."""

from __future__ import annotations

import io
from collections.abc import Iterable

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from ._fonts import FILES, font_bytes
from ._layout import Layout, check_size, dark_runs, layout
from ._sticker import Sticker

PAGE_MM = (210.0, 297.0)  # A4 portrait
PAGE_MARGIN_MM = 10.0
SHEET_COLUMNS = (1, 6)
SHEET_ROWS = (1, 8)
CUT_MARK_MM = (2.0, 7.0)  # from and to, measured out from the grid's edge into the margin
_FONT_NAMES = {bold: f"VendgateSticker-{FILES[bold].removesuffix('.ttf')}" for bold in FILES}


def sticker_sheet_pdf(stickers: Iterable[Sticker], *, columns: int = 3, rows: int = 4) -> bytes:
    """The stickers on A4 pages, ``columns`` x ``rows`` to a page, as many pages as they need.

    Each sticker fills its cell of the grid inside a 10 mm page margin; cut marks in the margin
    show where the cells meet. Print at 100% (no "fit to page")."""
    todo = list(stickers)
    if not todo:
        raise ValueError("stickers is empty: a sheet needs at least one sticker")
    for field, value, (low, high) in (
        ("columns", columns, SHEET_COLUMNS),
        ("rows", rows, SHEET_ROWS),
    ):
        if not low <= value <= high:
            raise ValueError(f"{field} {value} is out of range: it must be {low} to {high}")
    cell = _cell(columns, rows)
    try:
        check_size(*cell)
    except ValueError as error:
        raise ValueError(f"columns {columns} x rows {rows}: {error}") from None
    _register_fonts()
    out = io.BytesIO()
    # invariant: no creation date or random id, so the same stickers give the same bytes.
    canvas = Canvas(out, pagesize=A4, invariant=True)
    canvas.setTitle("vendgate stickers")
    canvas.setCreator("vendgate")
    per_page = columns * rows
    for first in range(0, len(todo), per_page):
        _cut_marks(canvas, columns, rows, cell)
        for index, sticker in enumerate(todo[first : first + per_page]):
            origin = (
                PAGE_MARGIN_MM + (index % columns) * cell[0],
                PAGE_MARGIN_MM + (index // columns) * cell[1],
            )
            _draw(canvas, layout(sticker, *cell), origin)
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def _cell(columns: int, rows: int) -> tuple[float, float]:
    return (
        (PAGE_MM[0] - 2 * PAGE_MARGIN_MM) / columns,
        (PAGE_MM[1] - 2 * PAGE_MARGIN_MM) / rows,
    )


def _register_fonts() -> None:
    registered = set(pdfmetrics.getRegisteredFontNames())
    for bold, name in _FONT_NAMES.items():
        if name not in registered:
            pdfmetrics.registerFont(TTFont(name, io.BytesIO(font_bytes(bold))))


def _point(origin: tuple[float, float], x: float, y: float) -> tuple[float, float]:
    """Millimetres from the page's top left corner to PDF points from its bottom left."""
    return (origin[0] + x) * mm, (PAGE_MM[1] - origin[1] - y) * mm


def _draw(canvas: Canvas, plan: Layout, origin: tuple[float, float]) -> None:
    # One filled path of whole runs: vector modules, sharp at any printer resolution.
    module = plan.qr.side / len(plan.qr.modules)
    path = canvas.beginPath()
    for row, column, length in dark_runs(plan.qr.modules):
        x, y = _point(origin, plan.qr.x + column * module, plan.qr.y + (row + 1) * module)
        path.rect(x, y, length * module * mm, module * mm)
    canvas.setFillGray(0)
    canvas.drawPath(path, stroke=0, fill=1)
    for line in plan.lines:
        canvas.setFont(_FONT_NAMES[line.bold], line.size * mm)
        canvas.drawCentredString(*_point(origin, line.centre_x, line.baseline), line.text)


def _cut_marks(canvas: Canvas, columns: int, rows: int, cell: tuple[float, float]) -> None:
    canvas.setLineWidth(0.25)
    canvas.setStrokeGray(0)
    near, far = CUT_MARK_MM
    top, bottom = PAGE_MARGIN_MM, PAGE_MM[1] - PAGE_MARGIN_MM
    left, right = PAGE_MARGIN_MM, PAGE_MM[0] - PAGE_MARGIN_MM
    page = (0.0, 0.0)
    for column in range(columns + 1):
        x = left + column * cell[0]
        for y0, y1 in ((top - near, top - far), (bottom + near, bottom + far)):
            canvas.line(*_point(page, x, y0), *_point(page, x, y1))
    for row in range(rows + 1):
        y = top + row * cell[1]
        for x0, x1 in ((left - near, left - far), (right + near, right + far)):
            canvas.line(*_point(page, x0, y), *_point(page, x1, y))

"""A sticker as a PNG image (Pillow), with its dpi recorded so it prints at its size."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from ._fonts import pil_font
from ._layout import STICKER_SIZE_MM, layout
from ._sticker import Modules, Sticker

DEFAULT_DPI = 300
DPI_RANGE = (72, 1200)
MM_PER_INCH = 25.4


def sticker_png(
    sticker: Sticker,
    *,
    size_mm: tuple[float, float] = STICKER_SIZE_MM,
    dpi: int = DEFAULT_DPI,
) -> bytes:
    """The sticker as a greyscale PNG of ``size_mm`` (width, height) at ``dpi``."""
    if not DPI_RANGE[0] <= dpi <= DPI_RANGE[1]:
        raise ValueError(f"dpi {dpi} is out of range: it must be {DPI_RANGE[0]} to {DPI_RANGE[1]}")
    plan = layout(sticker, *size_mm)
    scale = dpi / MM_PER_INCH
    image = Image.new("L", (round(plan.width * scale), round(plan.height * scale)), 255)
    _paste_qr(image, plan.qr.modules, plan.qr.x * scale, plan.qr.y * scale, plan.qr.side * scale)
    draw = ImageDraw.Draw(image)
    for line in plan.lines:
        font = pil_font(line.bold, line.size * scale)
        draw.text((line.centre_x * scale, line.baseline * scale), line.text, 0, font, "ms")
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()


def _paste_qr(image: Image.Image, modules: Modules, x: float, y: float, side: float) -> None:
    """Whole pixels per module: uneven modules would be harder to scan than a slightly smaller
    code."""
    count = len(modules)
    pixels = int(side // count)
    if pixels < 2:
        raise ValueError(
            "dpi is too low for this url at this size: a QR module would be under 2 pixels"
        )
    code = Image.new("L", (count, count))
    code.putdata([0 if dark else 255 for row in modules for dark in row])
    code = code.resize((count * pixels, count * pixels), Image.Resampling.NEAREST)
    offset = (side - count * pixels) / 2
    image.paste(code, (round(x + offset), round(y + offset)))

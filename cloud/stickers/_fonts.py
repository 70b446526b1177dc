"""The bundled DejaVu Sans fonts (Latin subset, see fonts/LICENSE), read from the package."""

from __future__ import annotations

import io
from functools import cache, lru_cache
from importlib.resources import files

from PIL import ImageFont

FILES = {False: "DejaVuSans.ttf", True: "DejaVuSans-Bold.ttf"}
# The family that SVG viewers are asked for; the same metrics as the bundled files.
SVG_FAMILY = "'DejaVu Sans', Verdana, Arial, sans-serif"
_MEASURE_PX = 1000  # widths are measured at this size and scaled: text width is linear in size


@cache
def font_bytes(bold: bool) -> bytes:
    return (files("vendgate.cloud.stickers") / "fonts" / FILES[bold]).read_bytes()


@lru_cache(maxsize=64)
def pil_font(bold: bool, size_px: float) -> ImageFont.FreeTypeFont:
    # Basic layout even where libraqm is installed: the same widths, so the same wrapping,
    # on every machine.
    return ImageFont.truetype(
        io.BytesIO(font_bytes(bold)), size=size_px, layout_engine=ImageFont.Layout.BASIC
    )


def text_width(text: str, *, bold: bool, size: float) -> float:
    """How wide ``text`` is at em size ``size``, in the unit of ``size``."""
    return pil_font(bold, _MEASURE_PX).getlength(text) * size / _MEASURE_PX

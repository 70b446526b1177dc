"""QR stickers for machines: PNG, SVG and A4 PDF print sheets. Pure rendering, no I/O.

A ``Sticker`` is checked when made (``ValueError`` naming the field); the renderers return
bytes or text. See docs/stickers.md for the layout, the sizes and how to print.
"""

from ._layout import MIN_QR_MM, STICKER_SIZE_MM
from ._pdf import PAGE_MARGIN_MM, sticker_sheet_pdf
from ._png import DEFAULT_DPI, sticker_png
from ._sticker import DEFAULT_INSTRUCTION, ERROR_CORRECTION, MAX_URL_BYTES, QUIET_ZONE, Sticker
from ._svg import sticker_svg

__all__ = [
    "DEFAULT_DPI",
    "DEFAULT_INSTRUCTION",
    "ERROR_CORRECTION",
    "MAX_URL_BYTES",
    "MIN_QR_MM",
    "PAGE_MARGIN_MM",
    "QUIET_ZONE",
    "STICKER_SIZE_MM",
    "Sticker",
    "sticker_png",
    "sticker_sheet_pdf",
    "sticker_svg",
]

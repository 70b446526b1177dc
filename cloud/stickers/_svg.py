"""A sticker as an SVG document in millimetres: qrcode's path for the code, text as text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from qrcode.image.svg import SvgPathImage

from ._fonts import SVG_FAMILY
from ._layout import STICKER_SIZE_MM, layout
from ._sticker import Sticker, qr_code

SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def sticker_svg(sticker: Sticker, *, size_mm: tuple[float, float] = STICKER_SIZE_MM) -> str:
    """The sticker as a standalone SVG document of ``size_mm`` (width, height)."""
    plan = layout(sticker, *size_mm)
    root = ET.Element(
        "svg",
        xmlns=SVG_NAMESPACE,
        version="1.1",
        width=f"{_number(plan.width)}mm",
        height=f"{_number(plan.height)}mm",
        viewBox=f"0 0 {_number(plan.width)} {_number(plan.height)}",
    )
    ET.SubElement(root, "rect", width="100%", height="100%", fill="#ffffff")
    # qrcode draws one module per unit (box_size 10 is "1mm" to it), quiet zone included.
    scale = plan.qr.side / len(plan.qr.modules)
    group = ET.SubElement(
        root,
        "g",
        transform=f"translate({_number(plan.qr.x)} {_number(plan.qr.y)}) scale({scale:.6g})",
    )
    group.append(_qr_path(sticker.url))
    for line in plan.lines:
        text = ET.SubElement(
            root,
            "text",
            {
                "x": _number(line.centre_x),
                "y": _number(line.baseline),
                "font-family": SVG_FAMILY,
                "font-size": _number(line.size),
                "font-weight": "bold" if line.bold else "normal",
                "text-anchor": "middle",
                # Another font than DejaVu is squeezed or stretched to the measured width, so
                # the text still fits.
                "textLength": _number(line.width),
                "lengthAdjust": "spacingAndGlyphs",
                "fill": "#000000",
            },
        )
        text.text = line.text
    return ET.tostring(root, encoding="unicode")


def _qr_path(url: str) -> ET.Element:
    drawn = qr_code(url).make_image(image_factory=SvgPathImage).path
    if drawn is None:  # make_image always processes the path; this is for the type checker
        raise RuntimeError("qrcode drew no SVG path")
    return ET.Element("path", d=drawn.get("d", ""), fill="#000000")


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")

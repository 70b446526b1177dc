"""Stickers: every output is read back the way a phone or a printer would read it.

PNGs are decoded with zxing-cpp; PDF pages are rendered with PDFium (pypdfium2) and then
decoded; the SVG's QR path is filled in by hand (it is all squares) and decoded. Pure: no
services, no files.
"""

from __future__ import annotations

import io
import re
import string
import xml.etree.ElementTree as ET

import pypdfium2
import pypdfium2.raw as pdfium_raw
import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from vendgate.cloud.stickers import (
    DEFAULT_INSTRUCTION,
    MAX_URL_BYTES,
    STICKER_SIZE_MM,
    Sticker,
    sticker_png,
    sticker_sheet_pdf,
    sticker_svg,
)

SVG = "{http://www.w3.org/2000/svg}"
A4_POINTS = (595.276, 841.890)
URL = "https://vendgate.example/m/vm-0042"
QUERY_URL = "https://vendgate.example/scan?machine=vm-0042&slot=A1&src=sticker%20v2#top"
LONG_URL = "https://vendgate.example/m/" + "x7-" * 200
# The most a version 40 QR code at level Q holds: it must still decode from the default PNG.
LONGEST_URL = "https://vendgate.example/" + "a" * (MAX_URL_BYTES - len("https://vendgate.example/"))


def decode(image: Image.Image) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)


def decode_png(png: bytes) -> list[str]:
    return [code.text for code in decode(Image.open(io.BytesIO(png)))]


def render_pdf(pdf: bytes, dpi: int = 300) -> list[Image.Image]:
    document = pypdfium2.PdfDocument(pdf)
    return [page.render(scale=dpi / 72).to_pil() for page in document]


# -- PNG ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "name"),
    [
        (URL, "Kaffe"),
        (QUERY_URL, "Kantina 2. etasje \u2013 Bjørnæs Kaffe ÆØÅ"),
        (LONG_URL, "Grünerløkka skole"),
        (LONGEST_URL, "Tromsø"),
    ],
    ids=["short", "query-and-norwegian-name", "long", "longest"],
)
def test_the_png_decodes_to_exactly_the_url(url: str, name: str) -> None:
    png = sticker_png(Sticker(url, name, "vm-0042"))

    assert decode_png(png) == [url]


def test_the_png_qr_code_uses_error_correction_q() -> None:
    png = sticker_png(Sticker(URL, "Kaffe", "vm-0042"))

    [code] = decode(Image.open(io.BytesIO(png)))
    assert code.ec_level == "Q"


def test_the_png_has_the_asked_size_and_records_its_dpi() -> None:
    image = Image.open(io.BytesIO(sticker_png(Sticker(URL, "Kaffe", "vm-1"), dpi=600)))

    width_mm, height_mm = STICKER_SIZE_MM
    assert image.size == (round(width_mm / 25.4 * 600), round(height_mm / 25.4 * 600))
    assert image.info["dpi"] == pytest.approx((600, 600), abs=0.01)  # PNG keeps dots per metre


def test_a_smaller_png_sticker_still_decodes() -> None:
    png = sticker_png(Sticker(QUERY_URL, "Kaffe", "vm-1"), size_mm=(40.0, 55.0), dpi=300)

    assert Image.open(io.BytesIO(png)).size == (472, 650)
    assert decode_png(png) == [QUERY_URL]


@pytest.mark.parametrize(
    "name",
    ["W" * 300, "Automaten ved inngangen til kantina i andre etasje, Bjørnæs skole"],
    ids=["one-long-word", "many-words"],
)
def test_a_long_name_stays_inside_the_margins(name: str) -> None:
    """Wrapped and shrunk, or cut with an ellipsis: never drawn over the sticker's edge."""
    image = Image.open(io.BytesIO(sticker_png(Sticker(URL, name, "vm-1"), dpi=300)))

    edge = round(3 / 25.4 * 300)  # the outer 3 mm on each side (the margin is 4 mm)
    left = image.crop((0, 0, edge, image.height))
    right = image.crop((image.width - edge, 0, image.width, image.height))
    assert left.getextrema() == (255, 255)
    assert right.getextrema() == (255, 255)
    assert decode_png(sticker_png(Sticker(URL, name, "vm-1"))) == [URL]


def test_a_long_name_is_drawn_smaller_than_a_short_one() -> None:
    def ink_rows(name: str) -> int:
        image = Image.open(io.BytesIO(sticker_png(Sticker(URL, name, "vm-1"), dpi=300)))
        top = image.crop((0, 0, image.width, round(18 / 25.4 * 300)))  # the name's band
        return sum(
            1 for y in range(top.height) if top.crop((0, y, top.width, y + 1)).getextrema()[0] < 128
        )

    assert ink_rows("Kaffe" * 12) < ink_rows("Kaffe")


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": ""}, "url is empty"),
        ({"url": "   "}, "url is empty"),
        ({"url": "https://x.example/" + "a" * MAX_URL_BYTES}, "url is too long for a QR code"),
        ({"url": "https://x.example/a b"}, "url has the character U+0020 at position 19"),
        ({"url": "https://bjørnæs.example/"}, "url has the character U+00F8"),
        ({"name": ""}, "name is empty"),
        ({"name": " \u00a0 "}, "name is empty"),
        ({"name": "Kaffe\nautomat"}, "name has the character U+000A (not printable)"),
        ({"machine_id": ""}, "machine_id is empty"),
        ({"instruction": "Scan\tme"}, "instruction has the character U+0009"),
    ],
)
def test_a_bad_sticker_is_refused_naming_the_field(fields: dict[str, str], message: str) -> None:
    values = {"url": URL, "name": "Kaffe", "machine_id": "vm-1"} | fields

    with pytest.raises(ValueError, match=re.escape(message)):
        Sticker(**values)


def test_the_longest_url_that_fits_is_accepted() -> None:
    assert Sticker(LONGEST_URL, "Kaffe", "vm-1").url == LONGEST_URL


def test_the_instruction_defaults_to_the_vipps_hint_and_may_be_left_out() -> None:
    assert (
        Sticker(URL, "Kaffe", "vm-1").instruction
        == DEFAULT_INSTRUCTION
        == ("Scan with Vipps or your camera")
    )
    assert decode_png(sticker_png(Sticker(URL, "Kaffe", "vm-1", instruction=""))) == [URL]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size_mm": (20.0, 30.0)}, "size_mm 20 x 30 is too small"),
        ({"size_mm": (70.0, 0.0)}, "size_mm 70 x 0 is out of range"),
        ({"size_mm": (400.0, 400.0)}, "size_mm 400 x 400 is out of range"),
        ({"dpi": 10}, "dpi 10 is out of range"),
    ],
)
def test_a_bad_png_size_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        sticker_png(Sticker(URL, "Kaffe", "vm-1"), **kwargs)  # type: ignore[arg-type]


def test_a_dpi_too_low_for_a_dense_code_is_refused() -> None:
    with pytest.raises(ValueError, match="dpi is too low for this url"):
        sticker_png(Sticker(LONGEST_URL, "Kaffe", "vm-1"), size_mm=(40.0, 60.0), dpi=100)


# -- SVG ------------------------------------------------------------------------------------------


def svg_qr_image(path_d: str) -> Image.Image:
    """Fill qrcode's square subpaths (``Mx,yHx2Vy2Hxz``, one unit a module) into an image."""
    squares = [tuple(map(int, m)) for m in re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z", path_d)]
    assert squares, "the path holds no squares"
    side = max(max(x2, y2) for _, _, x2, y2 in squares) + 4  # the quiet zone on the far side
    pixels = 8
    image = Image.new("L", (side * pixels, side * pixels), 255)
    draw = ImageDraw.Draw(image)
    for x, y, x2, y2 in squares:
        draw.rectangle((x * pixels, y * pixels, x2 * pixels - 1, y2 * pixels - 1), fill=0)
    return image


def test_the_svg_is_xml_with_the_escaped_name_and_id_and_a_qr_path_of_the_url() -> None:
    name = 'Bjørn & Søn <Kaffe> "Ø"'
    machine_id = "vm-<42>&'"
    svg = sticker_svg(Sticker(QUERY_URL, name, machine_id))

    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height")) == ("70mm", "90mm")
    assert "Bjørn &amp; Søn" in svg
    assert "&lt;Kaffe&gt;" in svg
    assert "vm-&lt;42&gt;&amp;" in svg
    bold = [t.text for t in root.iter(f"{SVG}text") if t.get("font-weight") == "bold"]
    assert " ".join(bold) == name
    assert [t.text for t in root.iter(f"{SVG}text")][-2:] == [DEFAULT_INSTRUCTION, machine_id]
    [path] = root.iter(f"{SVG}path")
    assert [code.text for code in decode(svg_qr_image(path.get("d", "")))] == [QUERY_URL]


def test_the_svg_qr_code_is_placed_inside_the_sticker() -> None:
    root = ET.fromstring(sticker_svg(Sticker(URL, "Kaffe", "vm-1"), size_mm=(50.0, 70.0)))

    assert root.get("viewBox") == "0 0 50 70"
    [group] = root.iter(f"{SVG}g")
    found = re.fullmatch(
        r"translate\(([\d.]+) ([\d.]+)\) scale\(([\d.]+)\)", group.get("transform", "")
    )
    assert found is not None
    x, y, scale = map(float, found.groups())
    modules = 37 + 8  # version 5 and the quiet zone
    assert 0 < x < x + modules * scale <= 50
    assert 0 < y < y + modules * scale <= 70


# -- PDF ------------------------------------------------------------------------------------------


def sheet(count: int, **layout: int) -> tuple[list[Sticker], bytes]:
    stickers = [
        Sticker(f"{URL}?n={n}", f"Automat {n} \u2013 Tøyen", f"vm-{n:04}") for n in range(count)
    ]
    return stickers, sticker_sheet_pdf(stickers, **layout)


@pytest.mark.parametrize(
    ("count", "layout", "pages"),
    [
        (1, {}, 1),
        (12, {}, 1),
        (13, {}, 2),
        (25, {"columns": 2, "rows": 4}, 4),
        (9, {"columns": 3, "rows": 3}, 1),
    ],
)
def test_the_sheet_has_a_page_per_grid_of_stickers(
    count: int, layout: dict[str, int], pages: int
) -> None:
    _, pdf = sheet(count, **layout)

    document = pypdfium2.PdfDocument(pdf)
    assert len(document) == pages
    for page in document:
        assert page.get_size() == pytest.approx(A4_POINTS, abs=0.01)


def test_every_qr_code_on_a_printed_sheet_decodes_to_its_sticker_url() -> None:
    stickers, pdf = sheet(14)

    first, second = render_pdf(pdf)
    assert sorted(code.text for code in decode(first)) == sorted(s.url for s in stickers[:12])
    assert sorted(code.text for code in decode(second)) == sorted(s.url for s in stickers[12:])


def test_the_sheet_draws_qr_codes_as_vectors_and_text_as_text() -> None:
    stickers, pdf = sheet(2)

    [page] = pypdfium2.PdfDocument(pdf)
    kinds = {obj.type for obj in page.get_objects()}
    assert pdfium_raw.FPDF_PAGEOBJ_IMAGE not in kinds
    assert pdfium_raw.FPDF_PAGEOBJ_PATH in kinds
    text = page.get_textpage().get_text_bounded()
    for sticker in stickers:
        assert sticker.name in text.replace("\r\n", " ").replace("\n", " ")
        assert sticker.machine_id in text


def test_a_sheet_qr_code_decodes_even_from_a_low_resolution_print() -> None:
    """150 dpi is a draft printer; a vector code is sharp at any resolution."""
    _, pdf = sheet(1)

    [page] = render_pdf(pdf, dpi=150)
    assert [code.text for code in decode(page)] == [f"{URL}?n=0"]


def test_the_pdf_records_no_creation_time_so_the_same_stickers_give_the_same_bytes() -> None:
    pdf = sheet(3)[1]

    assert re.findall(rb"/CreationDate \(D:(\d{4})", pdf) == [b"2000"]  # reportlab's invariant
    assert pdf == sheet(3)[1]


@pytest.mark.parametrize(
    ("stickers", "layout", "message"),
    [
        (0, {}, "stickers is empty"),
        (1, {"columns": 0}, "columns 0 is out of range"),
        (1, {"rows": 9}, "rows 9 is out of range"),
        (1, {"columns": 6, "rows": 8}, "columns 6 x rows 8: size_mm 31.6667 x 34.625 is too small"),
    ],
)
def test_a_bad_sheet_is_refused(stickers: int, layout: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        sheet(stickers, **layout)


# -- any name, any id -----------------------------------------------------------------------------

printable = st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"))
texts = st.text(st.one_of(st.just(" "), printable), min_size=1, max_size=60).filter(str.strip)
urls = st.text(
    st.sampled_from(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%"),
    min_size=1,
    max_size=300,
).map(lambda path: f"https://vendgate.example/{path}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(url=urls, name=texts, machine_id=texts, instruction=st.one_of(st.just(""), texts))
def test_any_printable_name_and_id_render_and_the_png_decodes_to_the_url(
    url: str, name: str, machine_id: str, instruction: str
) -> None:
    sticker = Sticker(url, name, machine_id, instruction)

    assert decode_png(sticker_png(sticker)) == [url]
    ET.fromstring(sticker_svg(sticker))
    assert sticker_sheet_pdf([sticker]).startswith(b"%PDF-")

"""The sticker value, its checks, and the QR code its url becomes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from qrcode import QRCode
from qrcode.constants import ERROR_CORRECT_Q
from qrcode.exceptions import DataOverflowError

DEFAULT_INSTRUCTION = "Scan with Vipps or your camera"
# Q restores up to 25% of the modules: stickers on machines get scratched and dirty.
ERROR_CORRECTION = "Q"
# The widest a QR code gets (version 40) at level Q, for a url in byte mode.
MAX_URL_BYTES = 1663
QUIET_ZONE = 4  # modules of white around the code, as ISO/IEC 18004 asks

Modules = tuple[tuple[bool, ...], ...]


@dataclass(frozen=True, slots=True)
class Sticker:
    """What one sticker shows: a QR code for ``url``, the machine's name and id, a hint.

    Checked when made: a ``ValueError`` names the field that is wrong.
    """

    url: str
    name: str
    machine_id: str
    instruction: str = DEFAULT_INSTRUCTION

    def __post_init__(self) -> None:
        _check_url(self.url)
        _check_text("name", self.name, required=True)
        _check_text("machine_id", self.machine_id, required=True)
        _check_text("instruction", self.instruction, required=False)
        qr_code(self.url)


def _check_url(url: str) -> None:
    if not url.strip():
        raise ValueError("url is empty")
    for index, char in enumerate(url):
        # A URL is ASCII (RFC 3986); other characters would leave the phone to guess the
        # QR code's text encoding, so they must come percent-encoded.
        if not ("!" <= char <= "~"):
            raise ValueError(
                f"url has {_describe(char)} at position {index}: a URL is printable ASCII "
                "without spaces (percent-encode anything else)"
            )


def _check_text(field: str, text: str, *, required: bool) -> None:
    if required and not text.strip():
        raise ValueError(f"{field} is empty")
    for index, char in enumerate(text):
        if not char.isprintable():
            raise ValueError(f"{field} has {_describe(char)} at position {index}")


def _describe(char: str) -> str:
    return f"the character U+{ord(char):04X}" + ("" if char.isprintable() else " (not printable)")


@lru_cache(maxsize=256)
def qr_code(url: str) -> QRCode[Any]:
    """The smallest QR code at level Q that holds ``url``; cached, as a version 40 takes 0.2 s."""
    code: QRCode[Any] = QRCode(error_correction=ERROR_CORRECT_Q, border=QUIET_ZONE, box_size=10)
    code.add_data(url)
    try:
        code.make(fit=True)
    # qrcode says "Invalid version (was 41 ...)" as a plain ValueError when the data is too long.
    except (DataOverflowError, ValueError):
        raise ValueError(
            f"url is too long for a QR code: {len(url.encode())} bytes, and a QR code at error "
            f"correction level {ERROR_CORRECTION} holds at most {MAX_URL_BYTES}"
        ) from None
    return code


def qr_modules(url: str) -> Modules:
    """The QR code's modules, quiet zone included, row by row; True is dark."""
    return tuple(tuple(bool(cell) for cell in row) for row in qr_code(url).get_matrix())

"""What this reader tells the VMC about itself, and how wire amounts map to minor units.

MDB money is scaled (spec §7.4.2): ``actual = P x scale_factor x 10^-decimal_places``. The
agent counts in the currency's minor units (øre for NOK, ISO 4217 exponent 2), so::

    minor units = P x scale_factor x 10^(exponent - decimal_places)

With the defaults (scale factor 1, 2 decimal places, NOK) one wire unit is one øre and the two
are the same number. ``to_scaled`` rounds down, so the reader never offers more than it was given.
"""

from __future__ import annotations

from dataclasses import dataclass

from vendgate.protocol import currency_exponent

# ISO 4217 numeric codes of the currencies a Nordic fleet meets; MDB sends them as packed BCD
# behind a leading 1 (``15 78`` = NOK), spec §7.4.2 Z3-Z4.
ISO_4217_NUMERIC = {
    "NOK": 578,
    "SEK": 752,
    "DKK": 208,
    "ISK": 352,
    "EUR": 978,
    "GBP": 826,
    "CHF": 756,
    "USD": 840,
}

READER_FEATURE_LEVEL = 1
"""Level 1 forms only (2-byte funds, 29-byte PERIPHERAL ID): every VMC level talks to it."""


@dataclass
class CashlessConfig:
    """The reader's identity and timing. Amount fields elsewhere are wire units (see module)."""

    currency: str = "NOK"
    scale_factor: int = 1
    decimal_places: int = 2
    max_response_time_s: int = 30
    """READER CONFIG DATA Z7: how long the VMC must wait for us; generous for a network reader."""
    selection_timeout_s: float = 60.0
    """An idle session with no selection for this long is ended (SESSION CANCEL REQUEST)."""
    link_lost_after_s: float = 2.0
    """No valid block from the VMC for this long means the board is gone."""
    manufacturer: str = "VGT"
    serial: str = "000000000001"
    model: str = "vendgate"
    software_version: int = 0x0100
    """Packed BCD, as PERIPHERAL ID carries it: 0x0100 is version 01.00."""
    multivend: bool = True
    """Advertise multi-vend (Z8 b1): the VMC may vend again while credit is left."""

    def __post_init__(self) -> None:
        if self.currency not in ISO_4217_NUMERIC:
            known = ", ".join(sorted(ISO_4217_NUMERIC))
            raise ValueError(f"currency {self.currency!r} has no MDB code here (known: {known})")
        if not 1 <= self.scale_factor <= 255:
            raise ValueError(f"scale_factor {self.scale_factor} is outside 1..255")
        exponent = currency_exponent(self.currency)
        if not 0 <= self.decimal_places <= exponent:
            raise ValueError(
                f"decimal_places {self.decimal_places} must be 0..{exponent} for "
                f"{self.currency}: a wire unit smaller than a minor unit cannot be charged"
            )
        if not 1 <= self.max_response_time_s <= 255:
            raise ValueError(f"max_response_time_s {self.max_response_time_s} is outside 1..255")
        if self.selection_timeout_s <= 0 or self.link_lost_after_s <= 0:
            raise ValueError("selection_timeout_s and link_lost_after_s must be positive")

    @property
    def currency_code(self) -> int:
        """The packed-BCD MDB currency field: NOK -> 0x1578."""
        return int(f"1{ISO_4217_NUMERIC[self.currency]:03d}", 16)

    @property
    def minor_units_per_step(self) -> int:
        """How many minor units one wire unit is worth (1 with the defaults)."""
        exponent = currency_exponent(self.currency)
        return self.scale_factor * int(10 ** (exponent - self.decimal_places))

    def to_scaled(self, minor_units: int) -> int:
        """Minor units -> wire units, rounded down (never offer more than authorized)."""
        return minor_units // self.minor_units_per_step

    def to_minor(self, scaled: int) -> int:
        """Wire units (prices in events) -> minor units."""
        return scaled * self.minor_units_per_step

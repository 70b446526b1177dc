"""Money: an integer amount in minor units plus an ISO 4217 currency, never a float.

The wire shape is the one the Vipps MobilePay APIs use, ``{"value": 2500, "currency": "NOK"}``,
so a ``Money`` goes to Vipps and over MQTT unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated

import msgspec

__all__ = ["MAX_WIRE_VALUE", "CurrencyMismatch", "Money", "MoneyError", "currency_exponent"]

_CURRENCY_CODE = re.compile(r"[A-Z]{3}")

# ISO 4217 minor-unit exponents that differ from the usual 2. Listing only the exceptions keeps
# the table short; an unlisted but well-formed code is treated as having 2 decimals.
_EXPONENT_EXCEPTIONS: dict[str, int] = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW"), 0),
    **dict.fromkeys(("PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
_DEFAULT_EXPONENT = 2

# The largest amount a decoder takes: a signed 32-bit count of minor units (21 474 836.47 NOK).
# It holds MDB's widest money field as vendgate uses it, Vipps' own limit (65 000 000) and a
# PostgreSQL `integer` column; a bigger value on the wire is a broken or hostile sender.
MAX_WIRE_VALUE = 2**31 - 1


class MoneyError(ValueError):
    """An amount that cannot exist: negative, not an integer, or with a malformed currency."""


class CurrencyMismatch(MoneyError):
    """Two amounts in different currencies were combined or compared."""


def currency_exponent(currency: str) -> int:
    """How many decimals the currency's minor unit has (ISO 4217): NOK 2, JPY 0, KWD 3."""
    _check_currency(currency)
    return _EXPONENT_EXCEPTIONS.get(currency, _DEFAULT_EXPONENT)


def _check_currency(currency: object) -> None:
    if not isinstance(currency, str) or not _CURRENCY_CODE.fullmatch(currency):
        raise MoneyError(f"currency must be a 3-letter uppercase ISO 4217 code, got {currency!r}")


class Money(msgspec.Struct, frozen=True):
    """A non-negative amount in minor units (øre for NOK) of one currency.

    Build it directly, ``Money(2500, "NOK")``: the constructor and the decoder both check it.
    The decoder also refuses a value above ``MAX_WIRE_VALUE``; the constructor does not, so
    sums never fail (the MQTT messages refuse such an amount when they are built).
    Amounts of different currencies never mix: ``+``, ``-``, ``<`` and friends raise
    ``CurrencyMismatch``; ``==`` simply answers False.
    """

    value: Annotated[int, msgspec.Meta(ge=0, le=MAX_WIRE_VALUE)]
    currency: str

    def __post_init__(self) -> None:
        # type() rather than isinstance(): bool is an int subclass, and True is not an amount.
        if type(self.value) is not int:
            raise MoneyError(f"value must be an integer number of minor units, got {self.value!r}")
        if self.value < 0:
            raise MoneyError(f"value must not be negative, got {self.value}")
        _check_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Nothing, in ``currency``: the start value for ``sum()``."""
        return cls(0, currency)

    @classmethod
    def total(cls, amounts: Iterable[Money], currency: str) -> Money:
        """The sum of ``amounts``, which must all be in ``currency`` (zero if there are none)."""
        return sum(amounts, cls.zero(currency))

    def format(self) -> str:
        """Human-readable, with the currency's decimals: ``"25.00 NOK"``, ``"500 JPY"``."""
        exponent = currency_exponent(self.currency)
        if exponent == 0:
            return f"{self.value} {self.currency}"
        major, minor = divmod(self.value, 10**exponent)
        return f"{major}.{minor:0{exponent}d} {self.currency}"

    def __str__(self) -> str:
        return self.format()

    def _same_currency(self, other: Money, operation: str) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(
                f"cannot {operation} {self.currency} and {other.currency} amounts"
            )

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "add")
        return Money(self.value + other.value, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "subtract")
        if other.value > self.value:
            raise MoneyError(f"{self.format()} - {other.format()} would be negative")
        return Money(self.value - other.value, self.currency)

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.value < other.value

    def __le__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.value <= other.value

    def __gt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.value > other.value

    def __ge__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.value >= other.value

"""Settlement decisions, pure: what to capture and cancel, which step comes next, the receipt.

Rules (DESIGN.md, money rules): capture the sum of the prices of items actually dispensed,
never more than authorized; cancel the rest; nothing dispensed → capture nothing and release
everything. Capture, cancel, verify and receipt happen in that order, each recorded first.

Price authority: the price of a line is the machine's planogram's (``Pricing.charge``), whatever
the machine reported; an item the planogram does not list is not charged. Only a machine set to
``vmc`` prices is charged what it reported (still never more than authorized).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from vendgate.protocol import Money


class PriceMode(StrEnum):
    """Who sets a machine's prices: its planogram in the cloud, or the machine (VMC) itself."""

    PLANOGRAM = "planogram"
    VMC = "vmc"


@dataclass(frozen=True)
class Line:
    """One vend attempt: as the machine reported it, or (stored) as the cloud charges it.

    ``vmc_price`` is what the VMC asked, when the machine reported it; stored lines carry none.
    """

    item: int
    price: Money
    success: bool
    vmc_price: Money | None = None


@dataclass(frozen=True)
class Priced:
    """A reported line as the cloud charges it (``price`` 0: not charged) and, when the machine
    disagrees with the planogram, what an operator should be told."""

    line: Line
    mismatch: str | None = None


@dataclass(frozen=True)
class Pricing:
    """A machine's price authority: its mode and its planogram (item -> minor units)."""

    mode: PriceMode
    planogram: Mapping[int, int]

    def charge(self, reported: Line) -> Priced:
        listed = self.planogram.get(reported.item)
        currency = reported.price.currency
        if listed is None:
            if self.mode is PriceMode.VMC:
                return Priced(_stored(reported, reported.price))  # nothing to compare it with
            unpriced = _stored(reported, Money.zero(currency))
            reason = (
                f"item {reported.item} is not in the planogram: not charged ({_asked(reported)})"
            )
            return Priced(unpriced, reason)
        price = Money(listed, currency)
        charged = _stored(reported, reported.price if self.mode is PriceMode.VMC else price)
        return Priced(charged, _mismatch(reported, price, self.mode))


def _stored(reported: Line, price: Money) -> Line:
    return dataclasses.replace(reported, price=price, vmc_price=None)


def _asked(reported: Line) -> str:
    asked = f"the edge charged {reported.price}"
    return asked if reported.vmc_price is None else f"{asked}, the VMC asked {reported.vmc_price}"


def _mismatch(reported: Line, listed: Money, mode: PriceMode) -> str | None:
    asked = [("the edge charged", reported.price), ("the VMC asked", reported.vmc_price)]
    differs = [f"{who} {money}" for who, money in asked if money is not None and money != listed]
    if not differs:
        return None
    charged = "the machine's price charged" if mode is PriceMode.VMC else "charged the planogram's"
    return f"item {reported.item}: planogram {listed}, {', '.join(differs)} ({charged})"


@dataclass(frozen=True)
class Settlement:
    capture: Money
    cancel: Money
    # The successful lines that fit in the authorization: what the receipt lists.
    charged: tuple[Line, ...]


def decide_settlement(authorized: Money, dispensed: Iterable[Line]) -> Settlement:
    """Capture what was dispensed (up to ``authorized``), cancel the remainder.

    Lines in another currency, failures, and successes that would push the total past the
    authorization are not charged: the customer never pays more than they approved. A line
    priced 0 (an item the planogram does not list) costs nothing and is not on the receipt.
    """
    charged: list[Line] = []
    total = Money.zero(authorized.currency)
    for line in dispensed:
        if not line.success or line.price.currency != authorized.currency:
            continue
        if line.price.value == 0:
            continue
        if total.value + line.price.value > authorized.value:
            continue
        charged.append(line)
        total = total + line.price
    return Settlement(capture=total, cancel=authorized - total, charged=tuple(charged))


class SettleStep(StrEnum):
    CAPTURE = "capture"
    CANCEL = "cancel"
    VERIFY = "verify"
    RECEIPT = "receipt"


@dataclass(frozen=True)
class SettleProgress:
    capture: int
    cancel: int
    # An abandoned scan: cancel whatever Vipps holds (maybe nothing, maybe a late approval)
    # and check nothing is left, though no amount was decided.
    release_all: bool = False
    captured: bool = False
    cancelled: bool = False
    verified: bool = False
    receipt_posted: bool = False


def next_settle_step(progress: SettleProgress) -> SettleStep | None:
    """The next money step, or None when the session is settled."""
    if progress.capture > 0 and not progress.captured:
        return SettleStep.CAPTURE
    if (progress.cancel > 0 or progress.release_all) and not progress.cancelled:
        return SettleStep.CANCEL
    moved = progress.capture > 0 or progress.cancel > 0 or progress.release_all
    if moved and not progress.verified:
        return SettleStep.VERIFY
    if progress.capture > 0 and not progress.receipt_posted:
        return SettleStep.RECEIPT
    return None


@dataclass(frozen=True)
class ReceiptLine:
    name: str
    item: int
    total: int
    excluding_tax: int
    tax: int
    vat_rate: int  # hundredths of a percent


def receipt_line(name: str, item: int, price: int, vat_rate: int) -> ReceiptLine:
    """A price including VAT split into net and tax; rounding goes to the tax (half up)."""
    tax = (price * vat_rate * 2 + (10_000 + vat_rate)) // (2 * (10_000 + vat_rate))
    return ReceiptLine(name, item, price, price - tax, tax, vat_rate)


def receipt_lines(
    charged: Sequence[Line], names: dict[int, tuple[str, int]], machine_vat: int
) -> list[ReceiptLine]:
    """Receipt lines for the charged items; ``names`` maps item → (name, VAT rate) from the
    planogram; an item it does not list (sold at VMC prices) has the machine's VAT rate."""
    lines = []
    for line in charged:
        name, vat = names.get(line.item, (f"Item {line.item}", machine_vat))
        lines.append(receipt_line(name, line.item, line.price.value, vat))
    return lines

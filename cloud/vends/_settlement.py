"""Settlement decisions, pure: what to capture and cancel, which step comes next, the receipt.

Rules (DESIGN.md, money rules): capture the sum of the prices of items actually dispensed,
never more than authorized; cancel the rest; nothing dispensed → capture nothing and release
everything. Capture, cancel, verify and receipt happen in that order, each recorded first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from vendgate.protocol import Money


@dataclass(frozen=True)
class Line:
    """One vend attempt as the machine reported it."""

    item: int
    price: Money
    success: bool


@dataclass(frozen=True)
class Settlement:
    capture: Money
    cancel: Money
    # The successful lines that fit in the authorization: what the receipt lists.
    charged: tuple[Line, ...]


def decide_settlement(authorized: Money, dispensed: Iterable[Line]) -> Settlement:
    """Capture what was dispensed (up to ``authorized``), cancel the remainder.

    Lines in another currency, failures, and successes that would push the total past the
    authorization are not charged: the customer never pays more than they approved.
    """
    charged: list[Line] = []
    total = Money.zero(authorized.currency)
    for line in dispensed:
        if not line.success or line.price.currency != authorized.currency:
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
    charged: Sequence[Line], names: dict[int, tuple[str, int]], default_vat: int = 2500
) -> list[ReceiptLine]:
    """Receipt lines for the charged items; ``names`` maps item → (name, VAT rate)."""
    lines = []
    for line in charged:
        name, vat = names.get(line.item, (f"Item {line.item}", default_vat))
        lines.append(receipt_line(name, line.item, line.price.value, vat))
    return lines

"""Settlement decisions and the money-step order: pure, with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vendgate.cloud.vends import (
    Line,
    Priced,
    PriceMode,
    Pricing,
    SettleProgress,
    SettleStep,
    decide_settlement,
    next_settle_step,
    receipt_line,
    receipt_lines,
)
from vendgate.protocol import Money

NOK = "NOK"

lines = st.lists(
    st.builds(
        Line,
        item=st.integers(0, 99),
        price=st.builds(Money, st.integers(0, 10_000), st.sampled_from([NOK, NOK, NOK, "SEK"])),
        success=st.booleans(),
    ),
    max_size=8,
)


@given(authorized=st.integers(0, 20_000), dispensed=lines)
def test_capture_plus_cancel_is_the_authorization_and_capture_never_exceeds_it(
    authorized: int, dispensed: list[Line]
) -> None:
    settlement = decide_settlement(Money(authorized, NOK), dispensed)
    assert settlement.capture.value + settlement.cancel.value == authorized
    assert settlement.capture.value <= authorized


@given(authorized=st.integers(0, 20_000), dispensed=lines)
def test_only_successful_lines_in_the_right_currency_are_charged(
    authorized: int, dispensed: list[Line]
) -> None:
    settlement = decide_settlement(Money(authorized, NOK), dispensed)
    assert all(line.success and line.price.currency == NOK for line in settlement.charged)
    assert sum(line.price.value for line in settlement.charged) == settlement.capture.value


@given(prices=st.lists(st.integers(1, 5_000), max_size=5))
def test_everything_dispensed_within_the_authorization_is_captured(prices: list[int]) -> None:
    dispensed = [Line(11, Money(p, NOK), True) for p in prices]
    authorized = Money(sum(prices) + 1, NOK)
    assert decide_settlement(authorized, dispensed).capture.value == sum(prices)


def test_nothing_dispensed_releases_everything() -> None:
    failed = [Line(12, Money(3500, NOK), False)]
    settlement = decide_settlement(Money(3500, NOK), failed)
    assert (settlement.capture, settlement.cancel) == (Money(0, NOK), Money(3500, NOK))


def test_a_board_reporting_more_than_authorized_is_capped() -> None:
    dispensed = [Line(11, Money(2500, NOK), True), Line(12, Money(2500, NOK), True)]
    settlement = decide_settlement(Money(3500, NOK), dispensed)
    assert settlement.capture == Money(2500, NOK)
    assert settlement.cancel == Money(1000, NOK)


@pytest.mark.parametrize(
    ("progress", "step"),
    [
        (SettleProgress(capture=2500, cancel=1000), SettleStep.CAPTURE),
        (SettleProgress(capture=2500, cancel=1000, captured=True), SettleStep.CANCEL),
        (
            SettleProgress(capture=2500, cancel=1000, captured=True, cancelled=True),
            SettleStep.VERIFY,
        ),
        (
            SettleProgress(capture=2500, cancel=1000, captured=True, cancelled=True, verified=True),
            SettleStep.RECEIPT,
        ),
        (SettleProgress(capture=0, cancel=3500), SettleStep.CANCEL),
        (SettleProgress(capture=0, cancel=3500, cancelled=True), SettleStep.VERIFY),
        (SettleProgress(capture=0, cancel=3500, cancelled=True, verified=True), None),
        (SettleProgress(capture=3500, cancel=0, captured=True, verified=True), SettleStep.RECEIPT),
    ],
)
def test_money_steps_come_in_order_and_nothing_is_owed_twice(
    progress: SettleProgress, step: SettleStep | None
) -> None:
    assert next_settle_step(progress) is step


@given(capture=st.integers(0, 10_000), cancel=st.integers(0, 10_000))
def test_following_the_steps_always_finishes_with_a_receipt_exactly_when_captured(
    capture: int, cancel: int
) -> None:
    progress = SettleProgress(capture=capture, cancel=cancel)
    taken: list[SettleStep] = []
    while (step := next_settle_step(progress)) is not None:
        assert step not in taken
        taken.append(step)
        progress = _done(progress, step)
    assert (SettleStep.RECEIPT in taken) == (capture > 0)
    assert (SettleStep.CAPTURE in taken) == (capture > 0)
    assert (SettleStep.CANCEL in taken) == (cancel > 0)


def _done(progress: SettleProgress, step: SettleStep) -> SettleProgress:
    field = {
        SettleStep.CAPTURE: "captured",
        SettleStep.CANCEL: "cancelled",
        SettleStep.VERIFY: "verified",
        SettleStep.RECEIPT: "receipt_posted",
    }[step]
    return SettleProgress(**{**progress.__dict__, field: True})


@given(price=st.integers(0, 1_000_000), vat=st.sampled_from([0, 1111, 1500, 2500]))
def test_receipt_line_splits_the_price_into_net_and_vat(price: int, vat: int) -> None:
    line = receipt_line("Cola", 11, price, vat)
    assert line.excluding_tax + line.tax == price
    # The tax is the rounded share vat/(1+vat) of the price.
    assert abs(line.tax * (10_000 + vat) - price * vat) <= (10_000 + vat) / 2


def test_receipt_line_example() -> None:
    line = receipt_line("Cola", 11, 2500, 1500)  # 15 % VAT on food in Norway
    assert (line.total, line.excluding_tax, line.tax) == (2500, 2174, 326)


# -- price authority: the planogram prices every line ------------------------------------------

PLANOGRAM = {11: 2500, 12: 3500}
BY_PLANOGRAM = Pricing(PriceMode.PLANOGRAM, PLANOGRAM)
BY_VMC = Pricing(PriceMode.VMC, PLANOGRAM)


def test_a_line_is_charged_the_planogram_price_whatever_the_machine_reported() -> None:
    reported = Line(11, Money(3500, NOK), True, vmc_price=Money(3500, NOK))
    priced = BY_PLANOGRAM.charge(reported)
    assert priced.line == Line(11, Money(2500, NOK), True)
    assert priced.mismatch == (
        "item 11: planogram 25.00 NOK, the edge charged 35.00 NOK, the VMC asked 35.00 NOK "
        "(charged the planogram's)"
    )


def test_a_line_at_the_planogram_price_is_no_mismatch() -> None:
    reported = Line(12, Money(3500, NOK), False, vmc_price=Money(3500, NOK))
    assert BY_PLANOGRAM.charge(reported) == Priced(Line(12, Money(3500, NOK), False))


def test_an_unlisted_item_is_not_charged_in_planogram_mode_and_charged_with_vmc_prices() -> None:
    reported = Line(13, Money(2000, NOK), True)
    unlisted = BY_PLANOGRAM.charge(reported)
    assert unlisted.line == Line(13, Money(0, NOK), True)
    assert unlisted.mismatch is not None
    assert "not in the planogram" in unlisted.mismatch
    assert decide_settlement(Money(3500, NOK), [unlisted.line]).charged == ()
    assert BY_VMC.charge(reported) == Priced(reported)


def test_with_vmc_prices_a_listed_item_is_charged_what_was_reported_and_flagged() -> None:
    priced = BY_VMC.charge(Line(11, Money(3000, NOK), True, vmc_price=Money(3000, NOK)))
    assert priced.line == Line(11, Money(3000, NOK), True)
    assert priced.mismatch is not None
    assert "planogram 25.00 NOK" in priced.mismatch


@given(
    item=st.sampled_from([11, 12, 13]),
    price=st.integers(0, 10_000),
    asked=st.none() | st.integers(0, 10_000),
    success=st.booleans(),
)
def test_in_planogram_mode_a_line_never_costs_other_than_the_planogram_price(
    item: int, price: int, asked: int | None, success: bool
) -> None:
    vmc_price = None if asked is None else Money(asked, NOK)
    priced = BY_PLANOGRAM.charge(Line(item, Money(price, NOK), success, vmc_price))
    assert priced.line.price.value == PLANOGRAM.get(item, 0)
    assert (priced.line.item, priced.line.success) == (item, success)
    differs = {price, asked} - {None, PLANOGRAM.get(item)}
    assert (priced.mismatch is None) == (item in PLANOGRAM and not differs)


def test_receipt_vat_comes_from_the_slot_else_from_the_machine() -> None:
    charged = [Line(11, Money(2500, NOK), True), Line(13, Money(2000, NOK), True)]
    lines = receipt_lines(charged, {11: ("Cola", 1500)}, 1200)
    assert [(r.name, r.vat_rate) for r in lines] == [("Cola", 1500), ("Item 13", 1200)]

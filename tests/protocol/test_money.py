"""Money: integer minor units, one currency, never negative."""

from __future__ import annotations

from collections.abc import Callable
from random import Random

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vendgate.protocol import (
    MAX_WIRE_VALUE,
    CurrencyMismatch,
    Money,
    MoneyError,
    currency_exponent,
)

NOK = "NOK"
amounts = st.integers(min_value=0, max_value=10**12)
nok = amounts.map(lambda value: Money(value, NOK))


def test_wire_shape_is_the_vipps_one() -> None:
    assert msgspec.json.encode(Money(2500, NOK)) == b'{"value":2500,"currency":"NOK"}'
    decoded = msgspec.json.decode(b'{"value":2500,"currency":"NOK"}', type=Money)
    assert decoded == Money(2500, NOK)


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        (-1, NOK),
        (True, NOK),
        (False, NOK),
        (2.5, NOK),
        ("25", NOK),
        (1, "nok"),
        (1, "NO"),
        (1, "NOKK"),
        (1, "N0K"),
        (1, ""),
        (1, 578),
    ],
)
def test_constructor_refuses_impossible_amounts(value: object, currency: object) -> None:
    with pytest.raises(MoneyError):
        Money(value, currency)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "payload",
    [
        b'{"value":-1,"currency":"NOK"}',
        b'{"value":true,"currency":"NOK"}',
        b'{"value":2.0,"currency":"NOK"}',
        b'{"value":1,"currency":"nok"}',
        b'{"value":1}',
    ],
)
def test_decoder_refuses_impossible_amounts(payload: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(payload, type=Money)


def test_money_error_is_a_value_error_and_mismatch_a_money_error() -> None:
    assert issubclass(MoneyError, ValueError)
    assert issubclass(CurrencyMismatch, MoneyError)


def test_add_and_subtract() -> None:
    assert Money(2500, NOK) + Money(500, NOK) == Money(3000, NOK)
    assert Money(2500, NOK) - Money(500, NOK) == Money(2000, NOK)
    assert Money(2500, NOK) - Money(2500, NOK) == Money.zero(NOK)


def test_subtracting_below_zero_raises() -> None:
    with pytest.raises(MoneyError, match="negative"):
        Money(100, NOK) - Money(101, NOK)


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
        lambda a, b: min(a, b),
        lambda a, b: sum([a, b], Money.zero(NOK)),
    ],
)
def test_mixing_currencies_raises(operation: Callable[[Money, Money], object]) -> None:
    with pytest.raises(CurrencyMismatch, match=r"(NOK and EUR|EUR and NOK) amounts"):
        operation(Money(1, NOK), Money(1, "EUR"))


def test_equality_across_currencies_is_false_not_an_error() -> None:
    assert Money(1, NOK) != Money(1, "EUR")
    assert Money(1, NOK) == Money(1, NOK)
    assert len({Money(1, NOK), Money(1, NOK), Money(1, "EUR")}) == 2


def test_comparisons() -> None:
    small, big = Money(100, NOK), Money(200, NOK)
    assert small < big
    assert small <= big
    assert big > small
    assert big >= small
    assert small <= Money(100, NOK)
    assert small >= Money(100, NOK)
    assert not small > big
    assert min([big, small]) == small
    assert max([big, small]) == big


def test_arithmetic_with_non_money_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Money(1, NOK) + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money(1, NOK) < 1  # type: ignore[operator]  # noqa: B015


def test_sum_and_total() -> None:
    prices = [Money(2500, NOK), Money(1500, NOK), Money(0, NOK)]
    assert sum(prices, Money.zero(NOK)) == Money(4000, NOK)
    assert Money.total(prices, NOK) == Money(4000, NOK)
    assert Money.total([], "EUR") == Money(0, "EUR")
    with pytest.raises(CurrencyMismatch):
        Money.total(prices, "EUR")


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(2500, NOK), "25.00 NOK"),
        (Money(5, NOK), "0.05 NOK"),
        (Money(0, "EUR"), "0.00 EUR"),
        (Money(123456789, "SEK"), "1234567.89 SEK"),
        (Money(1999, "DKK"), "19.99 DKK"),
        (Money(500, "JPY"), "500 JPY"),
        (Money(1234, "KWD"), "1.234 KWD"),
        (Money(10000, "CLF"), "1.0000 CLF"),
        (Money(12, "XYZ"), "0.12 XYZ"),
    ],
)
def test_format_uses_iso_4217_decimals(money: Money, text: str) -> None:
    assert money.format() == text
    assert str(money) == text


def test_currency_exponent() -> None:
    assert [currency_exponent(code) for code in ("NOK", "JPY", "BHD")] == [2, 0, 3]
    with pytest.raises(MoneyError):
        currency_exponent("nok")


@given(nok, nok)
def test_add_then_subtract_is_identity(a: Money, b: Money) -> None:
    assert a + b - b == a
    assert (a + b).value == a.value + b.value


@given(st.lists(nok, max_size=20), st.randoms())
def test_sum_is_order_independent(prices: list[Money], random: Random) -> None:
    shuffled = list(prices)
    random.shuffle(shuffled)
    assert Money.total(shuffled, NOK) == Money.total(prices, NOK)
    assert Money.total(prices, NOK).value == sum(price.value for price in prices)


@given(nok, nok)
def test_order_agrees_with_values(a: Money, b: Money) -> None:
    assert (a < b) == (a.value < b.value)
    assert min(a, b).value == min(a.value, b.value)


@given(amounts)
def test_format_round_trips_to_the_minor_units(value: int) -> None:
    major, minor = Money(value, NOK).format().removesuffix(" NOK").split(".")
    assert int(major) * 100 + int(minor) == value
    assert len(minor) == 2


@given(st.integers(min_value=0, max_value=MAX_WIRE_VALUE))
def test_wire_round_trip(value: int) -> None:
    money = Money(value, NOK)
    assert msgspec.json.decode(msgspec.json.encode(money), type=Money) == money


@given(st.integers(min_value=MAX_WIRE_VALUE + 1))
def test_decoder_refuses_more_than_a_signed_32_bit_amount(value: int) -> None:
    payload = msgspec.json.encode({"value": value, "currency": NOK})
    with pytest.raises(msgspec.ValidationError, match=f"<= {MAX_WIRE_VALUE}"):
        msgspec.json.decode(payload, type=Money)


@given(nok, nok)
def test_sums_may_pass_the_wire_bound(a: Money, b: Money) -> None:
    # Only the decoder (and the messages) bound an amount: arithmetic never fails on size.
    big = Money(MAX_WIRE_VALUE, NOK)
    assert (big + a + b).value == MAX_WIRE_VALUE + a.value + b.value

"""Planogram validation: every slot the cloud stores can be sold, priced and put on a receipt.

Pure tests on ``SlotSpec`` and ``validate_planogram`` (hypothesis), then ``upsert_machine`` on
SQLite: a refused planogram changes nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vendgate.cloud.db import create_engine, session_factory, transaction, upgrade_to_head
from vendgate.cloud.errors import InvalidPlanogram, VendgateError
from vendgate.cloud.machines import (
    MachineSpec,
    SlotSpec,
    slots_of,
    upsert_machine,
    validate_planogram,
)

MAX_PRICE = 2**31 - 1  # MDB's widest money field: a signed 32-bit count of minor units

items = st.integers(min_value=0, max_value=65535)
names = st.text(min_size=1, max_size=100).filter(str.strip)
prices = st.integers(min_value=1, max_value=MAX_PRICE)
vat_rates = st.integers(min_value=0, max_value=10_000)
slots = st.builds(SlotSpec, item=items, name=names, price=prices, vat_rate=vat_rates)


def refusal(**fields: object) -> InvalidPlanogram:
    values: dict[str, object] = {"item": 11, "name": "Cola", "price": 2500, "vat_rate": 1500}
    values.update(fields)
    with pytest.raises(InvalidPlanogram) as refused:
        SlotSpec(**values)  # type: ignore[arg-type]
    return refused.value


@given(slots)
def test_a_slot_within_every_bound_is_accepted_as_given(spec: SlotSpec) -> None:
    assert SlotSpec(**dataclasses.asdict(spec)) == spec


@given(st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_PRICE + 1)))
def test_a_price_that_is_not_positive_or_too_big_is_refused_naming_the_slot(price: int) -> None:
    error = refusal(price=price)
    assert (error.field, error.item) == ("price", 11)
    assert "slot 11" in error.detail
    assert "price" in error.detail
    assert str(price) in error.detail


@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=65536)))
def test_an_item_number_outside_mdbs_16_bits_is_refused(item: int) -> None:
    error = refusal(item=item)
    assert error.field == "item"
    assert str(item) in error.detail
    assert "0..65535" in error.detail


@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=10_001)))
def test_a_vat_rate_outside_0_to_100_percent_is_refused(vat_rate: int) -> None:
    error = refusal(vat_rate=vat_rate)
    assert error.field == "vat_rate"
    assert "slot 11" in error.detail
    assert str(vat_rate) in error.detail


@given(st.text(alphabet=" \t\n", max_size=5))
def test_an_empty_or_blank_name_is_refused(name: str) -> None:
    error = refusal(name=name)
    assert error.field == "name"
    assert "slot 11" in error.detail


def test_a_name_longer_than_the_column_is_refused() -> None:
    assert refusal(name="x" * 101).field == "name"
    assert SlotSpec(11, "x" * 100, 2500).name == "x" * 100


@pytest.mark.parametrize("field", ["item", "price", "vat_rate"])
def test_a_number_field_must_be_a_whole_number(field: str) -> None:
    assert refusal(**{field: 25.5}).field == field
    assert refusal(**{field: True}).field == field


def test_the_refusal_is_a_422_value_error_in_the_cloud_tree() -> None:
    error = refusal(price=-5)
    assert isinstance(error, VendgateError)
    assert isinstance(error, ValueError)
    assert error.status_code == 422
    assert error.detail == "slot 11 (Cola): price must be 1..2147483647 minor units, got -5"


@given(st.lists(slots, unique_by=lambda spec: spec.item, max_size=8))
def test_a_planogram_of_distinct_items_is_accepted(planogram: list[SlotSpec]) -> None:
    validate_planogram(planogram)


@given(st.lists(slots, min_size=1, max_size=8), st.data())
def test_an_item_number_given_twice_is_refused(
    planogram: list[SlotSpec], data: st.DataObject
) -> None:
    twin = data.draw(st.sampled_from(planogram))
    position = data.draw(st.integers(min_value=0, max_value=len(planogram)))
    doubled = [
        *planogram[:position],
        dataclasses.replace(twin, name="Other"),
        *planogram[position:],
    ]
    with pytest.raises(InvalidPlanogram) as refused:
        validate_planogram(doubled)
    assert refused.value.field == "item"
    assert f"item {refused.value.item} " in refused.value.detail
    assert refused.value.item in [spec.item for spec in planogram]


# -- upsert_machine: a refused planogram loses nothing ----------------------------------------


async def test_upsert_machine_refuses_duplicates_and_keeps_the_old_planogram(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/cloud.db")
    await upgrade_to_head(engine)
    sessions = session_factory(engine)
    now = datetime(2026, 5, 1, tzinfo=UTC)
    old = [SlotSpec(11, "Cola", 2500), SlotSpec(12, "Water", 2000)]
    try:
        async with transaction(sessions) as db:
            await upsert_machine(db, MachineSpec("m1", "Lobby", old), now)
        twice = [SlotSpec(11, "Cola", 2500), SlotSpec(11, "Fanta", 2500)]
        with pytest.raises(InvalidPlanogram, match="item 11 "):
            async with transaction(sessions) as db:
                await upsert_machine(db, MachineSpec("m1", "Renamed", twice), now)
        async with transaction(sessions) as db:
            kept = [(s.item, s.name, s.price) for s in await slots_of(db, "m1")]
    finally:
        await engine.dispose()
    assert kept == [(11, "Cola", 2500), (12, "Water", 2000)]

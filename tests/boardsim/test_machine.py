"""Slots, stock, motors and planogram files."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from vendgate.boardsim import (
    DEFAULT_SLOTS,
    Dispense,
    Machine,
    Slot,
    SlotError,
    load_slots,
    parse_slot,
)


def test_default_planogram_is_six_slots_from_15_to_35_nok() -> None:
    machine = Machine()
    assert len(machine.slots) == 6
    assert machine.price_range() == (1500, 3500)
    assert machine.slots == DEFAULT_SLOTS


def test_a_vend_takes_one_from_the_stock_and_is_logged() -> None:
    machine = Machine([Slot(7, 107, "Tea", 1200, stock=1)])
    assert machine.dispense(7) is True
    assert machine.slot(7).stock == 0
    assert machine.dispensed == [Dispense(7, 107, 1200, delivered=True)]
    with pytest.raises(SlotError, match="sold out"):
        machine.available(7)


def test_jam_on_command_fails_the_next_vend_only() -> None:
    machine = Machine([Slot(1, 1, "Tea", 1200)])
    machine.jam(1)
    assert machine.dispense(1) is False
    assert machine.slot(1).stock == 5  # the product stuck: still in the machine
    assert machine.dispense(1) is True


def test_jam_rate_uses_the_injected_random() -> None:
    def run(seed: int) -> list[bool]:
        machine = Machine([Slot(1, 1, "Tea", 1, stock=100)], jam_rate=0.5, rng=random.Random(seed))
        return [machine.dispense(1) for _ in range(40)]

    assert run(3) == run(3)
    assert 5 < run(3).count(False) < 35


def test_an_interrupted_vend_cannot_jam() -> None:
    machine = Machine([Slot(1, 1, "Tea", 1)], jam_rate=1.0)
    assert machine.dispense(1) is False
    assert machine.dispense(1, can_jam=False) is True


def test_unknown_slots_are_refused() -> None:
    with pytest.raises(SlotError, match="no slot 9"):
        Machine().jam(9)


def test_slots_load_from_json_and_toml(tmp_path: Path) -> None:
    json_file = tmp_path / "slots.json"
    json_file.write_text('{"slots": [{"number": 1, "item": 101, "name": "Cola", "price": 2500}]}')
    toml_file = tmp_path / "slots.toml"
    toml_file.write_text('[[slots]]\nnumber = 1\nitem = 101\nname = "Cola"\nprice = 2500\n')
    expected = (Slot(1, 101, "Cola", 2500, stock=5),)
    assert load_slots(json_file) == load_slots(toml_file) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"slots": []}', "non-empty list"),
        ('[{"number": 1, "price": 5}]', "'name'"),
        ('[{"number": 1, "name": "x", "price": true}]', "integer 'price'"),
        ('[{"number": 1, "name": "x", "price": -5}]', "cannot be negative"),
        (
            '[{"number": 1, "name": "a", "price": 1}, {"number": 1, "name": "b", "price": 2}]',
            "unique",
        ),
    ],
)
def test_bad_slot_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "slots.json"
    path.write_text(text)
    with pytest.raises(SlotError, match=message):
        load_slots(path)


@pytest.mark.parametrize(
    ("text", "slot"),
    [
        ("1:Cola:2500", Slot(1, 1, "Cola", 2500, 5)),
        ("2:Water:2000:10:102", Slot(2, 102, "Water", 2000, 10)),
    ],
)
def test_slot_flags(text: str, slot: Slot) -> None:
    assert parse_slot(text) == slot


@pytest.mark.parametrize("text", ["1:Cola", "1::2500", "x:Cola:2500", "1:Cola:2500:5:101:9"])
def test_bad_slot_flags(text: str) -> None:
    with pytest.raises(SlotError, match="slot"):
        parse_slot(text)


def test_a_machine_refuses_two_slots_with_one_number() -> None:
    with pytest.raises(SlotError, match="unique"):
        Machine([Slot(1, 1, "a", 1), Slot(1, 2, "b", 2)])

"""The keypad's control line protocol: parsing, and one answer line per command."""

from __future__ import annotations

import pytest

from vendgate.boardsim import KeypadCommand, KeypadError, ParseError, Slot, answer, parse_line

SLOT = Slot(2, 102, "Water", 2000)


class FakeKeypad:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def select(self, number: int) -> object:
        if number != 2:
            raise KeypadError(f"no slot {number}")
        self.calls.append(f"select {number}")
        return None

    def walk_away(self) -> None:
        self.calls.append("walk-away")

    def cancel(self) -> None:
        raise KeypadError("cannot cancel: no credit (pay first)")

    def jam(self, number: int) -> Slot:
        self.calls.append(f"jam {number}")
        return SLOT

    def power_cycle(self, off_s: float | None = None) -> float:
        self.calls.append(f"power-cycle {off_s}")
        return 3.0 if off_s is None else off_s

    def status(self) -> str:
        return "power=on reader=ready session=none"

    def slot(self, number: int) -> Slot:
        return SLOT


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("select 2", KeypadCommand("select", number=2)),
        ("  SELECT 12 \r\n", KeypadCommand("select", number=12)),
        ("jam 3", KeypadCommand("jam", number=3)),
        ("walk-away", KeypadCommand("walk-away")),
        ("power-cycle", KeypadCommand("power-cycle")),
        ("power-cycle 0.5", KeypadCommand("power-cycle", seconds=0.5)),
        ("status", KeypadCommand("status")),
        ("", None),
    ],
)
def test_parse(line: str, command: KeypadCommand | None) -> None:
    assert parse_line(line) == command


@pytest.mark.parametrize(
    "line", ["select", "select two", "select -1", "jam 1 2", "power-cycle soon", "status now", "x"]
)
def test_malformed_lines_are_refused(line: str) -> None:
    with pytest.raises(ParseError):
        parse_line(line)


@pytest.mark.parametrize(
    ("line", "reply", "calls"),
    [
        ("select 2", "ok vend requested: slot 2 (Water) item 102 price 2000", ["select 2"]),
        ("select 5", "error no slot 5", []),
        ("cancel", "error cannot cancel: no credit (pay first)", []),
        ("jam 2", "ok slot 2 (Water) will jam on its next vend", ["jam 2"]),
        ("walk-away", "ok customer walked away; the reader's selection timeout ends the session",
         ["walk-away"]),
        ("power-cycle", "ok power off for 3 s", ["power-cycle None"]),
        ("power-cycle 1.5", "ok power off for 1.5 s", ["power-cycle 1.5"]),
        ("status", "ok power=on reader=ready session=none", []),
        ("frobnicate", "error unknown command 'frobnicate'; try help", []),
    ],
)  # fmt: skip
def test_each_command_gets_exactly_one_answer_line(line: str, reply: str, calls: list[str]) -> None:
    keypad = FakeKeypad()
    assert answer(line, keypad) == reply
    assert "\n" not in reply
    assert keypad.calls == calls


def test_help_lists_every_command_and_blank_lines_get_no_answer() -> None:
    help_line = answer("help", FakeKeypad())
    assert help_line is not None
    assert help_line.startswith("ok commands:")
    for verb in ("select N", "walk-away", "cancel", "jam N", "power-cycle", "status"):
        assert verb in help_line
    assert answer("   ", FakeKeypad()) is None

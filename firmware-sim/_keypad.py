"""The keypad's control protocol: one command per line, exactly one answer line per command.

::

    select N          the customer presses selection N  -> ok vend requested: slot N ...
    walk-away         the customer leaves                -> ok customer walked away ...
    cancel            the customer presses cancel        -> ok session ending
    jam N             the next vend of slot N fails      -> ok slot N will jam ...
    power-cycle [S]   cut the power for S seconds        -> ok power off for S s
    status            what the machine is doing          -> ok power=on reader=ready ...
    help              this list                          -> ok commands: ...

A refused or malformed command answers ``error <why>``. Blank lines get no answer. Outcomes
are not pushed: ask ``status`` (its ``last_vend`` field).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ._machine import Slot
from ._vmc import KeypadError

HELP = (
    "commands: select N, walk-away, cancel, jam N, power-cycle [SECONDS], status, help "
    "(one answer line each: ok ... / error ...)"
)


class KeypadTarget(Protocol):
    """What the line protocol drives: the simulator's keypad."""

    def select(self, number: int) -> object: ...
    def walk_away(self) -> None: ...
    def cancel(self) -> None: ...
    def jam(self, number: int) -> Slot: ...
    def power_cycle(self, off_s: float | None = None) -> float: ...
    def status(self) -> str: ...
    def slot(self, number: int) -> Slot: ...


class ParseError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class KeypadCommand:
    verb: str
    number: int | None = None
    seconds: float | None = None


VERBS_WITH_SLOT = {"select", "jam"}
VERBS_ALONE = {"walk-away", "cancel", "status", "help"}


def parse_line(line: str) -> KeypadCommand | None:
    """The command on ``line``; None for a blank line; ``ParseError`` for anything else."""
    words = line.strip().lower().split()
    if not words:
        return None
    verb, args = words[0], words[1:]
    if verb in VERBS_WITH_SLOT:
        if len(args) != 1 or not args[0].isdigit():
            raise ParseError(f"usage: {verb} N (N = slot number)")
        return KeypadCommand(verb, number=int(args[0]))
    if verb == "power-cycle":
        return KeypadCommand(verb, seconds=_seconds(args))
    if verb in VERBS_ALONE:
        if args:
            raise ParseError(f"{verb} takes no arguments")
        return KeypadCommand(verb)
    raise ParseError(f"unknown command {verb!r}; try help")


def _seconds(args: list[str]) -> float | None:
    if not args:
        return None
    try:
        seconds = float(args[0])
    except ValueError:
        seconds = -1.0
    if len(args) > 1 or not 0 <= seconds <= 3600:
        raise ParseError("usage: power-cycle [SECONDS] (0..3600)")
    return seconds


def answer(line: str, target: KeypadTarget) -> str | None:
    """Parse and run one line; the one answer line (None for a blank line)."""
    try:
        command = parse_line(line)
        return None if command is None else "ok " + run(command, target)
    except (ParseError, KeypadError) as exc:
        return f"error {exc}"


def run(command: KeypadCommand, target: KeypadTarget) -> str:
    """Run a parsed command; the text after ``ok``. Raises ``KeypadError`` when refused."""
    verb, number = command.verb, command.number
    if verb == "select" and number is not None:
        target.select(number)
        slot = target.slot(number)
        return (
            f"vend requested: slot {slot.number} ({slot.name}) item {slot.item} price {slot.price}"
        )
    if verb == "jam" and number is not None:
        slot = target.jam(number)
        return f"slot {slot.number} ({slot.name}) will jam on its next vend"
    if verb == "walk-away":
        target.walk_away()
        return "customer walked away; the reader's selection timeout ends the session"
    if verb == "cancel":
        target.cancel()
        return "session ending"
    if verb == "power-cycle":
        return f"power off for {target.power_cycle(command.seconds):g} s"
    if verb == "status":
        return target.status()
    return HELP

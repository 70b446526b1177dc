"""The vend board simulator: a vending machine controller (VMC), bus master on MDB.

Layers (it imports only ``vendgate.protocol``, never the edge):

- ``Machine`` (``_machine``): slots with selection number, MDB item, name, price and stock;
  motors that jam at a rate or on command; ``load_slots`` reads a JSON or TOML planogram.
- ``BusMaster`` (``_master``): one transaction at a time, repeats on silence, RET on a bad reply.
- ``Vmc`` (``_vmc``): the pure controller (initialisation, polling, sessions, the keypad),
  driven by ``now`` like the edge's reader; ``VendOutcome`` events are the ground truth.
- ``_keypad``: the control line protocol (``select N``, ``walk-away``, ``jam N``...).
- ``BoardSim`` (``_shell``): the VMC on a pty with a capture file; ``serve_control`` /
  ``serve_stdin`` put the keypad protocol on a socket or stdin. CLI: ``vendgate board-sim``;
  manual: ``docs/board-sim.md``.
"""

from ._keypad import HELP, KeypadCommand, ParseError, answer, parse_line
from ._machine import DEFAULT_SLOTS, Dispense, Machine, Slot, SlotError, load_slots, parse_slot
from ._master import BusMaster
from ._shell import BoardSim, serve_control, serve_stdin
from ._vmc import (
    KeypadError,
    Phase,
    PowerOff,
    PowerOn,
    ReaderReady,
    SessionClosed,
    SessionOpened,
    SessionStep,
    VendOutcome,
    VendResult,
    Vmc,
    VmcConfig,
    VmcEvent,
)

__all__ = [
    "DEFAULT_SLOTS",
    "HELP",
    "BoardSim",
    "BusMaster",
    "Dispense",
    "KeypadCommand",
    "KeypadError",
    "Machine",
    "ParseError",
    "Phase",
    "PowerOff",
    "PowerOn",
    "ReaderReady",
    "SessionClosed",
    "SessionOpened",
    "SessionStep",
    "Slot",
    "SlotError",
    "VendOutcome",
    "VendResult",
    "Vmc",
    "VmcConfig",
    "VmcEvent",
    "answer",
    "load_slots",
    "parse_line",
    "parse_slot",
    "serve_control",
    "serve_stdin",
]

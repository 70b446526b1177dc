"""The edge's MDB cashless device (#1, level 1, authorization first): a pure core, a thin shell.

- ``Reader`` (``_reader``): the sans-I/O state machine. Bytes or blocks and ``now`` in, reply
  bytes and ``ReaderEvent``s out; ``next_deadline``/``handle_timer`` for the selection timeout
  and link loss. States and legal moves are one table (``_states``).
- ``SerialCashless`` (``_shell``): the asyncio shell on a pyserial port; the contract the
  agent codes against. ``CashlessConfig`` (``_config``) is what the reader says about itself.

Events (``_events``), in bus order: ``SessionStarted``, ``VendRequested``, ``ApprovalSent`` /
``DenialSent`` (our VEND APPROVED / VEND DENIED), ``VendSucceeded`` / ``VendFailed``,
``SessionEnded(reason)`` (a ``vendgate.protocol.mqtt.EndReason``), ``BoardReset``, ``LinkLost``,
``LinkRestored``, ``ReaderEnabled``, ``ReaderDisabled``. Amounts in events are wire units;
``CashlessConfig.to_minor`` turns them into minor units (identity by default).
Contract and diagrams: ``docs/cashless-device.md``.
"""

from vendgate.protocol.mdb import LocalMdbError, MdbError, RemoteMdbError

from ._config import CashlessConfig
from ._events import (
    NEED_DATA,
    ApprovalSent,
    BoardReset,
    DenialSent,
    DenyReason,
    LinkLost,
    LinkRestored,
    NeedData,
    PriceMode,
    ReaderDisabled,
    ReaderEnabled,
    ReaderEvent,
    SessionEnded,
    SessionStarted,
    VendFailed,
    VendRequested,
    VendSucceeded,
)
from ._reader import Reader
from ._shell import SerialCashless
from ._states import TRANSITIONS, Move, State, transition

__all__ = [
    "NEED_DATA",
    "TRANSITIONS",
    "ApprovalSent",
    "BoardReset",
    "CashlessConfig",
    "DenialSent",
    "DenyReason",
    "LinkLost",
    "LinkRestored",
    "LocalMdbError",
    "MdbError",
    "Move",
    "NeedData",
    "PriceMode",
    "Reader",
    "ReaderDisabled",
    "ReaderEnabled",
    "ReaderEvent",
    "RemoteMdbError",
    "SerialCashless",
    "SessionEnded",
    "SessionStarted",
    "State",
    "VendFailed",
    "VendRequested",
    "VendSucceeded",
    "transition",
]

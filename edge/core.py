"""The edge agent's sans-I/O core, the way h11 exposes its events: ``handle(input, now)``.

``AgentCore`` (``_core``) is fed one ``Input`` at a time (``_inputs``) and answers with a list
of ``Action`` (``_actions``) for a shell to carry out in order; its durable state changes go
out as one ``Persist(Commit)`` first in each list, and it is rebuilt from a ``Snapshot``
(``_records``). ``Settings`` (``_settings``) are what ``cmd/config`` may change. No I/O, no
clock: ``EdgeAgent`` (``vendgate.edge``) is the shell that wires it to the reader, MQTT, a
``Store`` and a ``vendgate.protocol.Clock``.

The reader's events that carry amounts reach the core converted to minor units
(``SessionFunded``, ``ItemApproved``, ``ItemResult``); ``SessionEnded`` is the reader's own
event (``vendgate.edge.cashless``), re-exported here because it is an input as it is.
"""

from vendgate.edge._actions import (
    Action,
    ApplySettings,
    CancelSession,
    Log,
    Persist,
    Publish,
    SetWill,
    StartSession,
)
from vendgate.edge._core import AgentCore
from vendgate.edge._inputs import (
    BeginFailed,
    Board,
    Booted,
    CloudPresenceArrived,
    CommandArrived,
    Connected,
    Connecting,
    Disconnected,
    Input,
    ItemApproved,
    ItemResult,
    ResendDue,
    SessionEnded,
    SessionFunded,
    ShuttingDown,
    TelemetryDue,
)
from vendgate.edge._records import (
    Approval,
    Commit,
    JsonValue,
    OutboxEvent,
    Snapshot,
    VendPhase,
    VendRecord,
)
from vendgate.edge._settings import PRICE_MODES, SETTING_RANGES, Settings

__all__ = [
    "PRICE_MODES",
    "SETTING_RANGES",
    "Action",
    "AgentCore",
    "ApplySettings",
    "Approval",
    "BeginFailed",
    "Board",
    "Booted",
    "CancelSession",
    "CloudPresenceArrived",
    "CommandArrived",
    "Commit",
    "Connected",
    "Connecting",
    "Disconnected",
    "Input",
    "ItemApproved",
    "ItemResult",
    "JsonValue",
    "Log",
    "OutboxEvent",
    "Persist",
    "Publish",
    "ResendDue",
    "SessionEnded",
    "SessionFunded",
    "SetWill",
    "Settings",
    "ShuttingDown",
    "Snapshot",
    "StartSession",
    "TelemetryDue",
    "VendPhase",
    "VendRecord",
]

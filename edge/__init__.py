"""The edge agent: one process per vending machine, between the MDB bus and MQTT.

It drives the vend board's cashless reader (``vendgate.edge.cashless``), takes ``authorized``,
``cancel``, ``ack`` and ``config`` commands from the cloud, and reports every vend (``started``,
``dispensed``, ``ended``, ``rejected``) from a durable SQLite outbox until the cloud acks it.

- ``AgentCore`` (``_core``): the pure decisions, ``handle(input, now) -> actions``.
- ``SqliteStore`` / ``MemoryStore`` (``_outbox``): the durable state behind the ``Store`` interface.
- ``MqttLink`` (``_mqtt``): aiomqtt, as in the cloud; a fresh last will on every reconnect.
- ``EdgeAgent`` (``_agent``): the wiring; ``build_agent(config)`` for a real machine.
- ``EdgeConfig`` (``_config``): flags and ``VENDGATE_*`` variables.
- ``Faults`` (``_faults``): the fault-injection seam, ``no_faults`` by default; ``FAULT_POINTS``.

The command is ``vendgate edge``; docs/edge-agent.md describes behaviour, configuration and
deployment. The names below load on first use, so ``vendgate --help`` stays fast.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vendgate.edge._agent import Clock, EdgeAgent, SystemClock, build_agent
    from vendgate.edge._config import OPTIONS, ConfigError, EdgeConfig, MqttUrl, Option
    from vendgate.edge._core import AgentCore
    from vendgate.edge._device import CashlessDevice
    from vendgate.edge._faults import FAULT_POINTS, Faults, after_outbox_write, no_faults
    from vendgate.edge._mqtt import LinkCallbacks, MqttLink
    from vendgate.edge._outbox import MemoryStore, SqliteStore, Store
    from vendgate.edge._records import Commit, OutboxEvent, Snapshot, VendPhase, VendRecord
    from vendgate.edge._settings import Settings

__all__ = [
    "FAULT_POINTS",
    "OPTIONS",
    "AgentCore",
    "CashlessDevice",
    "Clock",
    "Commit",
    "ConfigError",
    "EdgeAgent",
    "EdgeConfig",
    "Faults",
    "LinkCallbacks",
    "MemoryStore",
    "MqttLink",
    "MqttUrl",
    "Option",
    "OutboxEvent",
    "Settings",
    "Snapshot",
    "SqliteStore",
    "Store",
    "SystemClock",
    "VendPhase",
    "VendRecord",
    "after_outbox_write",
    "build_agent",
    "no_faults",
]

_HOMES = {
    "FAULT_POINTS": "_faults",
    "OPTIONS": "_config",
    "AgentCore": "_core",
    "CashlessDevice": "_device",
    "Clock": "_agent",
    "Commit": "_records",
    "ConfigError": "_config",
    "EdgeAgent": "_agent",
    "EdgeConfig": "_config",
    "Faults": "_faults",
    "LinkCallbacks": "_mqtt",
    "MemoryStore": "_outbox",
    "MqttLink": "_mqtt",
    "MqttUrl": "_config",
    "Option": "_config",
    "OutboxEvent": "_records",
    "Settings": "_settings",
    "Snapshot": "_records",
    "SqliteStore": "_outbox",
    "Store": "_outbox",
    "SystemClock": "_agent",
    "VendPhase": "_records",
    "VendRecord": "_records",
    "after_outbox_write": "_faults",
    "build_agent": "_agent",
    "no_faults": "_faults",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)

"""The edge agent: one process per vending machine, between the MDB bus and MQTT.

It drives the vend board's cashless reader (``vendgate.edge.cashless``), takes ``authorized``,
``cancel``, ``ack`` and ``config`` commands from the cloud, and reports every vend (``started``,
``dispensed``, ``ended``, ``rejected``) from a durable SQLite outbox until the cloud acks it.

- ``vendgate.edge.core``: the pure core, ``AgentCore.handle(input, now) -> actions``, with its
  inputs, actions, records (``Commit``, ``Snapshot``...) and ``Settings``.
- ``SqliteStore`` / ``MemoryStore`` (``_outbox``): the durable state behind the ``Store`` interface.
- ``MqttLink`` (``_mqtt``): aiomqtt, as in the cloud; a fresh last will on every reconnect.
- ``EdgeAgent`` (``_agent``): the wiring; ``build_agent(config)`` for a real machine. It reads
  time from a ``vendgate.protocol.Clock`` (``SystemClock`` unless a test passes another).
- ``EdgeConfig`` (``_config``): flags (``add_arguments``), ``VENDGATE_*`` variables and the
  config file (``read_config_file``).
- ``claim`` (``_claim``): ``vendgate edge claim``, a claim code traded for the broker login.
- ``Faults`` (``_faults``): the fault-injection seam, ``no_faults`` by default; ``FAULT_POINTS``.
- ``format_line`` / ``log_event`` (``_logs``): the agent's ``key=value`` log lines.

The command is ``vendgate edge``; docs/edge-agent.md describes behaviour, configuration and
deployment. The names below load on first use, so ``vendgate --help`` stays fast.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vendgate.edge._agent import EdgeAgent, build_agent
    from vendgate.edge._claim import ClaimError, claim, write_config_file
    from vendgate.edge._config import (
        OPTIONS,
        ConfigError,
        EdgeConfig,
        MqttUrl,
        Option,
        add_arguments,
        read_config_file,
    )
    from vendgate.edge._device import CashlessDevice
    from vendgate.edge._faults import FAULT_POINTS, Faults, after_outbox_write, no_faults
    from vendgate.edge._logs import format_line, log_event
    from vendgate.edge._mqtt import LinkCallbacks, MqttLink
    from vendgate.edge._outbox import MemoryStore, SqliteStore, Store

__all__ = [
    "FAULT_POINTS",
    "OPTIONS",
    "CashlessDevice",
    "ClaimError",
    "ConfigError",
    "EdgeAgent",
    "EdgeConfig",
    "Faults",
    "LinkCallbacks",
    "MemoryStore",
    "MqttLink",
    "MqttUrl",
    "Option",
    "SqliteStore",
    "Store",
    "add_arguments",
    "after_outbox_write",
    "build_agent",
    "claim",
    "format_line",
    "log_event",
    "no_faults",
    "read_config_file",
    "write_config_file",
]

_HOMES = {
    "FAULT_POINTS": "_faults",
    "OPTIONS": "_config",
    "CashlessDevice": "_device",
    "ClaimError": "_claim",
    "ConfigError": "_config",
    "EdgeAgent": "_agent",
    "EdgeConfig": "_config",
    "Faults": "_faults",
    "LinkCallbacks": "_mqtt",
    "MemoryStore": "_outbox",
    "MqttLink": "_mqtt",
    "MqttUrl": "_config",
    "Option": "_config",
    "SqliteStore": "_outbox",
    "Store": "_outbox",
    "add_arguments": "_config",
    "after_outbox_write": "_faults",
    "build_agent": "_agent",
    "claim": "_claim",
    "read_config_file": "_config",
    "write_config_file": "_claim",
    "format_line": "_logs",
    "log_event": "_logs",
    "no_faults": "_faults",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)

"""Machines and their planogram, status and pings."""

from ._fleet import (
    BrokerLogin,
    ClaimCodeView,
    CreatedMachine,
    Fleet,
    FleetPolicy,
    MachineBody,
    MachinePage,
    MachinePatch,
    MachineView,
    SlotBody,
    machine_spec,
)
from ._logins import machine_login_holds
from ._ping import Pings
from ._service import (
    MachineSpec,
    SlotSpec,
    get_machine,
    has_open_vend,
    planogram_config,
    record_status,
    record_telemetry,
    seen,
    send_planogram,
    slots_of,
    unavailability,
    upsert_machine,
    validate_planogram,
)
from ._stickers import Stickers

__all__ = [
    "BrokerLogin",
    "ClaimCodeView",
    "CreatedMachine",
    "Fleet",
    "FleetPolicy",
    "MachineBody",
    "MachinePage",
    "MachinePatch",
    "MachineSpec",
    "MachineView",
    "Pings",
    "SlotBody",
    "SlotSpec",
    "Stickers",
    "get_machine",
    "has_open_vend",
    "machine_login_holds",
    "machine_spec",
    "planogram_config",
    "record_status",
    "record_telemetry",
    "seen",
    "send_planogram",
    "slots_of",
    "unavailability",
    "upsert_machine",
    "validate_planogram",
]

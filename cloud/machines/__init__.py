"""Machines and their planogram, status and pings."""

from ._ping import Pings
from ._service import (
    MachineSpec,
    SlotSpec,
    get_machine,
    has_open_vend,
    planogram_config,
    record_status,
    send_planogram,
    slots_of,
    unavailability,
    upsert_machine,
    validate_planogram,
)

__all__ = [
    "MachineSpec",
    "Pings",
    "SlotSpec",
    "get_machine",
    "has_open_vend",
    "planogram_config",
    "record_status",
    "send_planogram",
    "slots_of",
    "unavailability",
    "upsert_machine",
    "validate_planogram",
]

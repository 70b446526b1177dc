"""Machines and their planogram."""

from ._service import (
    SlotSpec,
    get_machine,
    has_open_vend,
    planogram_config,
    record_status,
    send_planogram,
    slots_of,
    unavailability,
    upsert_machine,
)

__all__ = [
    "SlotSpec",
    "get_machine",
    "has_open_vend",
    "planogram_config",
    "record_status",
    "send_planogram",
    "slots_of",
    "unavailability",
    "upsert_machine",
]

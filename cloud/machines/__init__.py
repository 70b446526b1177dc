"""Machines and their planogram."""

from ._service import (
    SlotSpec,
    get_machine,
    has_open_vend,
    record_status,
    slots_of,
    unavailability,
    upsert_machine,
    validate_planogram,
)

__all__ = [
    "SlotSpec",
    "get_machine",
    "has_open_vend",
    "record_status",
    "slots_of",
    "unavailability",
    "upsert_machine",
    "validate_planogram",
]

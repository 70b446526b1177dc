"""Fault injection: a seam at the one point of the agent where a crash matters most.

Whoever builds the agent passes ``faults`` (``build_agent(config, faults=...)``); the agent calls
it with a point's name as it passes that point. The default, ``no_faults``, does nothing, and
nothing in the agent reads a variable or ends the process for it. The crash tests pass one that
kills the process at a named point (``tests/support/crashing.py``).

The points: ``after_outbox_write:<event>`` for each event a commit wrote, right after that
commit (fsynced) and before the event is published, e.g. ``after_outbox_write:evt/dispensed``.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["FAULT_POINTS", "Faults", "after_outbox_write", "no_faults"]

Faults = Callable[[str], None]
"""Called with a point's name each time the agent passes that point."""

# The events the outbox holds (wire names).
OUTBOX_EVENTS = ("evt/started", "evt/dispensed", "evt/ended", "evt/rejected")


def after_outbox_write(event_name: str) -> str:
    """The point right after a commit that wrote an event ``event_name``, before its publish."""
    return f"after_outbox_write:{event_name}"


FAULT_POINTS = tuple(after_outbox_write(name) for name in OUTBOX_EVENTS)


def no_faults(point: str) -> None:
    """The default: every point passes."""

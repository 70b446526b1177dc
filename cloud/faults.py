"""Fault injection: a seam at the points of a settlement where a crash matters most.

Whoever builds the app passes ``faults`` to ``create_app``; the cloud calls it with the name of
each point below as it passes it. The default, ``no_faults``, does nothing, and nothing in the
cloud reads a variable or ends the process for it. The crash tests pass one that kills the
process at a named point (``tests/support/crashing.py``), then restart the cloud and check that
the reconciler finishes the settlement exactly once.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["AFTER_CAPTURE", "AFTER_VIPPS_CALL_BEFORE_COMMIT", "POINTS", "Faults", "no_faults"]

Faults = Callable[[str], None]
"""Called with a point's name each time the cloud passes that point."""

# The capture call to Vipps returned; nothing of it is recorded yet.
AFTER_VIPPS_CALL_BEFORE_COMMIT = "after_vipps_call_before_commit"
# The capture is recorded (committed); the cancel of the rest is not yet made.
AFTER_CAPTURE = "after_capture"
POINTS = (AFTER_VIPPS_CALL_BEFORE_COMMIT, AFTER_CAPTURE)


def no_faults(point: str) -> None:
    """The default: every point passes."""

"""A test-only crash hook: ``VENDGATE_CRASH_AT=<point>`` kills the process at that point.

The crash tests start ``vendgate cloud serve`` with it to prove the reconciler finishes a
settlement the process was killed in the middle of. Production never sets the variable; an
unset or unknown value does nothing. The points:

- ``after_vipps_call_before_commit``: the capture call to Vipps returned, nothing recorded yet;
- ``after_capture``: the capture is recorded (committed), the cancel not yet made.
"""

from __future__ import annotations

import logging
import os

ENV = "VENDGATE_CRASH_AT"
POINTS = frozenset({"after_vipps_call_before_commit", "after_capture"})
EXIT_STATUS = 137  # what a SIGKILL looks like to a shell

log = logging.getLogger(__name__)


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        log.warning("crash hook %s: exiting now (test only)", name)
        logging.shutdown()
        os._exit(EXIT_STATUS)

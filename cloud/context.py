"""What the running app shares between its parts: settings, database, clock, signals, pings,
and the vend service (``vends``), the one owner of vend sessions.

One instance lives on ``app.state.ctx`` and is injected into controllers and the background
tasks. The adapters change a vend session only through ``vends``; the Vipps client and the
fault points are the service's (its executor's), not theirs. Signals are only wake-ups (an
``asyncio.Event``): every fact they hint at is in the database already, so a lost wake-up costs
at most one reconciler interval.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from vendgate.cloud.db import SessionFactory
from vendgate.cloud.machines import Pings
from vendgate.cloud.vends import VendService, VippsExecutor
from vendgate.cloud.vipps import VippsClient
from vendgate.protocol.mqtt import TopicTree

from .clock import Clock
from .faults import Faults, no_faults
from .settings import CloudSettings


@dataclass
class CloudContext:
    settings: CloudSettings
    sessions: SessionFactory
    vipps: VippsClient
    clock: Clock
    postgres: bool
    tree: TopicTree = field(default_factory=TopicTree)
    faults: Faults = no_faults  # the crash tests' seam (cloud/faults.py)
    # The scan's client: one attempt per call (the reconciler retries); None: ``vipps``.
    scan_vipps: VippsClient | None = None
    work_signal: asyncio.Event = field(default_factory=asyncio.Event)
    outbox_signal: asyncio.Event = field(default_factory=asyncio.Event)
    # Pings waiting for their pong, in this replica's memory (the MQTT link is set by the app).
    pings: Pings = field(init=False)
    vends: VendService = field(init=False)

    def __post_init__(self) -> None:
        self.pings = Pings(self.tree, self.clock)
        executor = VippsExecutor(self.vipps, self.settings, scan_vipps=self.scan_vipps)
        self.vends = VendService(
            self.sessions,
            executor,
            clock=self.clock,
            timing=self.settings.timing,
            tree=self.tree,
            faults=self.faults,
            on_command=self.kick_outbox,
        )

    def kick_work(self) -> None:
        """Something became due: let the reconciler look now rather than at its next pass."""
        self.work_signal.set()

    def kick_outbox(self) -> None:
        """A command was written to the outbox: publish it now."""
        self.outbox_signal.set()

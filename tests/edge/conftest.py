"""Shared helpers for the edge agent tests, handed out as fixtures.

``core_harness`` drives the pure core the way the agent does (every ``Persist`` is committed to a
``MemoryStore`` before the next input) with a fake clock advanced by assignment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from vendgate.edge._actions import Action, Log, Persist, Publish
from vendgate.edge._core import AgentCore
from vendgate.edge._inputs import (
    Board,
    Booted,
    CommandArrived,
    Connected,
    Input,
    SessionClosed,
    SessionOpened,
    VendApproved,
    VendResult,
)
from vendgate.edge._outbox import MemoryStore, Store
from vendgate.protocol import Money
from vendgate.protocol.mqtt import Authorized, Command, EndReason, Message, decode

MACHINE = "m1"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
READY = Board(state="enabled", link_up=True, can_begin_session=True)


@dataclass
class CoreHarness:
    store: Store = field(default_factory=MemoryStore)
    now: datetime = T0
    boot_count: int = 0
    core: AgentCore = field(init=False)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> list[Action]:
        """A new process on the same store: load, then boot."""
        self.core = AgentCore(machine_id=MACHINE, currency="NOK", snapshot=self.store.load())
        self.boot_count += 1
        return self.feed(Booted(f"boot-{self.boot_count}", {"agent": "test"}))

    def feed(self, event: Input) -> list[Action]:
        actions = self.core.handle(event, self.now)
        for action in actions:
            if isinstance(action, Persist):
                self.store.commit(action.commit)
        return actions

    def command(self, message: Command, board: Board = READY) -> list[Action]:
        assert message.topic_name is not None
        return self.feed(CommandArrived(message.topic_name, message.encode(), board))

    def connect(self) -> list[Action]:
        return self.feed(Connected())

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    # -- helpers for the tests (fixtures are the only way to share them here) -----------------

    READY = READY
    MACHINE = MACHINE

    def authorized(
        self, vend_id: str = "v1", value: int = 2500, currency: str = "NOK", ttl_s: float = 120
    ) -> Authorized:
        return Authorized.create(
            now=self.now,
            vend_id=vend_id,
            amount=Money(value, currency),
            expires_at=self.now + timedelta(seconds=ttl_s),
        )

    @staticmethod
    def published(actions: Sequence[Action], name: str | None = None) -> list[Message]:
        """The messages the actions publish (decoded), optionally only those on ``name``."""
        return [
            decode(a.name, a.payload)
            for a in actions
            if isinstance(a, Publish) and (name is None or a.name == name)
        ]

    @staticmethod
    def logged(actions: Sequence[Action]) -> list[str]:
        return [a.event for a in actions if isinstance(a, Log)]

    def run_vend(self, vend_id: str = "v1", item: int = 3, price: int = 2000) -> list[Action]:
        """authorized, session, one successful item, session complete: all the actions."""
        actions = self.command(self.authorized(vend_id))
        actions += self.feed(SessionOpened(2500))
        actions += self.feed(VendApproved(item, price))
        actions += self.feed(VendResult(item, price, success=True))
        actions += self.feed(SessionClosed(EndReason.COMPLETED))
        return actions


@pytest.fixture
def harness() -> CoreHarness:
    return CoreHarness()


@pytest.fixture
def online(harness: CoreHarness) -> CoreHarness:
    harness.connect()
    return harness


@pytest.fixture
def make_harness() -> Callable[..., CoreHarness]:
    return CoreHarness

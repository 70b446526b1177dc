"""One step of the core: the actions it decides and the durable changes they need.

The core collects both while it handles an input; ``actions()`` then puts the ``Persist`` of
everything first, so the shell makes it durable before it publishes or begins a session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vendgate.edge._actions import Action, Log, Persist
from vendgate.edge._records import Commit, JsonValue, OutboxEvent, VendRecord

__all__ = ["Step"]


@dataclass
class Step:
    now: datetime
    events: list[OutboxEvent] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    vends: dict[str, VendRecord] = field(default_factory=dict)
    settings: dict[str, JsonValue] = field(default_factory=dict)
    last_seq: int | None = None
    boot_id: str | None = None
    effects: list[Action] = field(default_factory=list)

    def do(self, action: Action) -> None:
        self.effects.append(action)

    def log(self, log: Log) -> None:
        self.effects.append(log)

    def commit(self) -> Commit:
        return Commit(
            events=tuple(self.events),
            acked=tuple(self.acked),
            vends=tuple(self.vends.values()),
            last_seq=self.last_seq,
            settings=dict(self.settings),
            boot_id=self.boot_id,
        )

    def actions(self) -> list[Action]:
        commit = self.commit()
        if commit.is_empty():
            return list(self.effects)
        return [Persist(commit), *self.effects]

"""Random lives of the edge agent's core: commands, reader events, acks, disconnects, crashes.

Whatever happens, in any order: an event written and not acknowledged is never lost (a crash
reloads it from the store), it is written before it is published, a vend id never gets two
sessions, and every ``ended`` adds up.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from vendgate.edge import MemoryStore
from vendgate.edge.core import (
    Action,
    AgentCore,
    BeginFailed,
    Board,
    Booted,
    CommandArrived,
    Connected,
    Disconnected,
    Input,
    ItemApproved,
    ItemResult,
    Persist,
    Publish,
    ResendDue,
    SessionEnded,
    SessionFunded,
    StartSession,
    TelemetryDue,
)
from vendgate.protocol import ManualClock, Money
from vendgate.protocol.mqtt import Ack, Authorized, Cancel, Config, Ended, EndReason, decode

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
VEND_IDS = st.sampled_from(["a", "b", "c", "d"])
BOARDS = st.builds(
    Board,
    state=st.sampled_from(["inactive", "disabled", "enabled", "session_idle", "vend", "error"]),
    link_up=st.booleans(),
    can_begin_session=st.booleans(),
)
PRICES = st.integers(min_value=0, max_value=5000)
ITEMS = st.integers(min_value=0, max_value=20)


class AgentLife(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.clock = ManualClock(T0)
        self.boots = 0
        self.written: dict[str, int] = {}  # event id -> seq, every event ever persisted
        self.acked: set[str] = set()
        self.sessions_begun: Counter[str] = Counter()
        self.core = self._start()

    def _start(self) -> AgentCore:
        self.boots += 1
        core = AgentCore(machine_id="m1", currency="NOK", snapshot=self.store.load())
        self.core = core
        self._feed(Booted(f"boot-{self.boots}", {"agent": "test"}))
        return core

    def _feed(self, event: Input) -> None:
        self._check_and_apply(self.core.handle(event, self.clock.now()))

    def _check_and_apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Persist):
                for written in action.commit.events:
                    assert written.id not in self.written
                    assert all(written.seq > seq for seq in self.written.values())
                    self.written[written.id] = written.seq
                self.store.commit(action.commit)
            elif isinstance(action, Publish) and action.event_id is not None:
                if action.name != "evt/hello":
                    assert action.event_id in self.written, "published before it was written"
                self._check_message(action)
            elif isinstance(action, StartSession):
                self.sessions_begun[action.vend_id] += 1

    def _check_message(self, action: Publish) -> None:
        message = decode(action.name, action.payload)
        if isinstance(message, Ended):
            message.check_total()

    def _command(self, message: Authorized | Cancel | Ack | Config, board: Board) -> None:
        assert message.topic_name is not None
        self._feed(CommandArrived(message.topic_name, message.encode(), board))

    # -- the world ----------------------------------------------------------------------------

    @rule(vend_id=VEND_IDS, ttl=st.sampled_from([-5, 60, 600]), board=BOARDS, value=PRICES)
    def authorized(self, vend_id: str, ttl: int, board: Board, value: int) -> None:
        expires = self.clock.now() + timedelta(seconds=ttl)
        amount = Money(value, "NOK")
        message = Authorized.create(
            now=self.clock.now(), vend_id=vend_id, amount=amount, expires_at=expires
        )
        self._command(message, board)

    @rule(vend_id=VEND_IDS)
    def cancel(self, vend_id: str) -> None:
        self._command(Cancel.create(now=self.clock.now(), vend_id=vend_id), Board())

    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        pending = [e.id for e in self.core.outbox]
        chosen = data.draw(st.lists(st.sampled_from([*pending, "unknown"]), max_size=4))
        self.acked.update(event_id for event_id in chosen if event_id in self.written)
        self._command(Ack.create(now=self.clock.now(), events=chosen), Board())

    @rule(value=st.one_of(st.integers(-10, 1000), st.text(max_size=3), st.none()))
    def config(self, value: object) -> None:
        message = Config.create(now=self.clock.now(), settings={"selection_timeout_s": value})
        self._command(message, Board())

    @rule(payload=st.binary(max_size=40), name=st.sampled_from(["authorized", "ack", "zap"]))
    def garbage(self, payload: bytes, name: str) -> None:
        self._feed(CommandArrived(name, payload, Board()))

    @rule(funds=PRICES)
    def session_funded(self, funds: int) -> None:
        self._feed(SessionFunded(funds))

    @rule(item=ITEMS, price=PRICES)
    def item_approved(self, item: int, price: int) -> None:
        self._feed(ItemApproved(item, price))

    @rule(item=ITEMS, price=PRICES, success=st.booleans())
    def item_result(self, item: int, price: int, success: bool) -> None:
        self._feed(ItemResult(item, price, success))

    @rule(reason=st.sampled_from(list(EndReason)))
    def session_ended(self, reason: EndReason) -> None:
        self._feed(SessionEnded(reason))

    @rule(vend_id=VEND_IDS, board=BOARDS)
    def begin_failed(self, vend_id: str, board: Board) -> None:
        self._feed(BeginFailed(vend_id, board, "refused"))

    @rule()
    def connect(self) -> None:
        self._feed(Connected())

    @rule()
    def disconnect(self) -> None:
        self._feed(Disconnected("gone"))

    @rule(seconds=st.sampled_from([1, 10, 30]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self._feed(ResendDue())
        self._feed(TelemetryDue(1, Board()))

    @rule()
    def crash_and_restart(self) -> None:
        self._start()

    # -- what must always hold ----------------------------------------------------------------

    @invariant()
    def no_unacked_event_is_ever_lost(self) -> None:
        unacked = set(self.written) - self.acked
        assert unacked <= {e.id for e in self.store.load().pending}
        assert unacked <= {e.id for e in self.core.outbox}

    @invariant()
    def acked_events_leave_the_outbox(self) -> None:
        assert not self.acked & {e.id for e in self.store.load().pending}

    @invariant()
    def a_vend_id_never_gets_two_sessions(self) -> None:
        assert all(count <= 1 for count in self.sessions_begun.values())

    @invariant()
    def at_most_one_vend_is_active(self) -> None:
        assert len(self.core.open_vends) <= 1


AgentLife.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAgentLife = AgentLife.TestCase

"""The pure core of the edge agent: each input against the actions it must produce.

No broker, no reader, no sleeping: ``harness`` feeds inputs at a fake time and commits every
``Persist`` to an in-memory store, as the agent does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from vendgate.edge.core import (
    ApplySettings,
    BeginFailed,
    Board,
    CancelSession,
    Connected,
    Disconnected,
    ItemApproved,
    ItemResult,
    Log,
    OutboxEvent,
    Persist,
    Publish,
    ResendDue,
    SessionEnded,
    SessionFunded,
    SetWill,
    ShuttingDown,
    StartSession,
    TelemetryDue,
    VendPhase,
)
from vendgate.protocol import Money
from vendgate.protocol.mqtt import (
    Ack,
    Authorized,
    Cancel,
    Config,
    Dispensed,
    DispensedItem,
    Ended,
    EndReason,
    Hello,
    Message,
    Rejected,
    RejectReason,
    Started,
    Status,
    StatusState,
    Telemetry,
    decode,
)

if TYPE_CHECKING:
    from conftest import CoreHarness

# -- authorized: start or reject -------------------------------------------------------------


def test_authorized_on_a_ready_board_records_the_vend_then_begins_the_session(
    online: CoreHarness,
) -> None:
    actions = online.command(online.authorized("v1", 2500))

    effects = [a for a in actions if isinstance(a, Persist | StartSession | Publish)]
    assert effects[1:] == [StartSession("v1", 2500)]
    persist = effects[0]
    assert isinstance(persist, Persist)
    assert [v.phase for v in persist.commit.vends] == [VendPhase.PENDING]
    assert online.published(actions) == []


@pytest.mark.parametrize(
    ("board", "reason"),
    [
        (Board("disabled", link_up=True, can_begin_session=False), RejectReason.BOARD_DOWN),
        (Board("inactive", link_up=False, can_begin_session=False), RejectReason.BOARD_DOWN),
        (Board("error", link_up=True, can_begin_session=False), RejectReason.BOARD_DOWN),
        (Board("session_idle", link_up=True, can_begin_session=False), RejectReason.BUSY),
        (Board("vend", link_up=True, can_begin_session=False), RejectReason.BUSY),
    ],
)
def test_authorized_is_rejected_when_the_board_cannot_start(
    online: CoreHarness, board: Board, reason: RejectReason
) -> None:
    actions = online.command(online.authorized("v1"), board)

    (rejected,) = online.published(actions, "evt/rejected")
    assert isinstance(rejected, Rejected)
    assert (rejected.vend_id, rejected.reason) == ("v1", reason)
    assert not any(isinstance(a, StartSession) for a in actions)
    assert isinstance(actions[0], Persist)  # written before it is published
    assert actions[0].commit.events[0].id == rejected.id


@pytest.mark.parametrize(
    ("make_command", "reason"),
    [
        (lambda h: h.authorized("v1", ttl_s=-1), RejectReason.EXPIRED),
        (lambda h: h.authorized("v1", ttl_s=0), RejectReason.EXPIRED),
        (lambda h: h.authorized("v1", currency="EUR"), RejectReason.INVALID),
        (lambda h: h.authorized("v1", value=0), RejectReason.INVALID),
    ],
)
def test_authorized_that_makes_no_sense_is_rejected(
    online: CoreHarness, make_command: Callable[[CoreHarness], Authorized], reason: RejectReason
) -> None:
    actions = online.command(make_command(online))

    (rejected,) = online.published(actions, "evt/rejected")
    assert isinstance(rejected, Rejected)
    assert rejected.reason == reason
    assert not any(isinstance(a, StartSession) for a in actions)


def test_a_second_vend_while_one_is_open_is_busy(online: CoreHarness) -> None:
    online.command(online.authorized("v1"))
    online.feed(SessionFunded(2500))

    actions = online.command(online.authorized("v2"))

    (rejected,) = online.published(actions, "evt/rejected")
    assert isinstance(rejected, Rejected)
    assert rejected.reason == RejectReason.BUSY
    assert not any(isinstance(a, StartSession) for a in actions)


def test_the_reader_refusing_begin_session_rejects_the_vend(online: CoreHarness) -> None:
    online.command(online.authorized("v1"))

    actions = online.feed(BeginFailed("v1", Board("disabled", True, False), "not enabled"))

    (rejected,) = online.published(actions, "evt/rejected")
    assert isinstance(rejected, Rejected)
    assert rejected.reason == RejectReason.BOARD_DOWN
    # and the board is free again for the next vend
    assert any(isinstance(a, StartSession) for a in online.command(online.authorized("v2")))


def test_a_begin_session_the_board_never_confirms_is_given_up(online: CoreHarness) -> None:
    online.command(online.authorized("v1"))
    online.advance(5)
    assert online.published(online.feed(ResendDue())) == []

    online.advance(11)
    actions = online.feed(ResendDue())

    assert CancelSession("v1") in actions
    (rejected,) = online.published(actions, "evt/rejected")
    assert isinstance(rejected, Rejected)
    assert rejected.reason == RejectReason.BOARD_DOWN


# -- a whole vend -----------------------------------------------------------------------------


def test_a_vend_reports_started_dispensed_and_ended_in_order(online: CoreHarness) -> None:
    actions = online.run_vend("v1", item=3, price=2000)

    started, dispensed, ended = online.published(actions)
    assert isinstance(started, Started)
    assert started.funds == Money(2500, "NOK")
    assert isinstance(dispensed, Dispensed)
    assert (dispensed.item, dispensed.price, dispensed.success) == (3, Money(2000, "NOK"), True)
    assert isinstance(ended, Ended)
    assert ended.reason == EndReason.COMPLETED
    assert ended.dispensed == (DispensedItem(item=3, price=Money(2000, "NOK"), success=True),)
    assert ended.check_total() == Money(2000, "NOK")
    assert started.seq < dispensed.seq < ended.seq
    assert {e.vend_id for e in (started, dispensed, ended)} == {"v1"}


def test_every_event_is_persisted_in_the_same_step_before_it_is_published(
    online: CoreHarness,
) -> None:
    online.command(online.authorized("v1"))
    for event in (SessionFunded(2500), ItemResult(1, 500, True), SessionEnded(EndReason.COMPLETED)):
        actions = online.feed(event)  # type: ignore[arg-type]
        persist = actions[0]
        assert isinstance(persist, Persist)
        publishes = [a for a in actions if isinstance(a, Publish)]
        assert [p.event_id for p in publishes] == [e.id for e in persist.commit.events]


def test_ended_total_counts_only_successful_items(online: CoreHarness) -> None:
    online.command(online.authorized("v1", 5000))
    online.feed(SessionFunded(5000))
    online.feed(ItemResult(1, 1500, success=False))
    online.feed(ItemResult(2, 1000, success=True))
    (ended,) = online.published(online.feed(SessionEnded(EndReason.COMPLETED)))

    assert isinstance(ended, Ended)
    assert [line.success for line in ended.dispensed] == [False, True]
    assert ended.total == Money(1000, "NOK")


def test_an_approved_vend_records_the_item_without_publishing(online: CoreHarness) -> None:
    online.command(online.authorized("v1"))
    online.feed(SessionFunded(2500))

    actions = online.feed(ItemApproved(4, 1200))

    assert online.published(actions) == []
    vend = online.core.vend("v1")
    assert vend is not None
    assert vend.in_flight is not None
    assert vend.in_flight.item == 4


@pytest.mark.parametrize("reason", [EndReason.TIMEOUT, EndReason.LINK_LOST])
def test_a_session_that_ends_mid_vend_reports_the_unknown_item_as_failed(
    online: CoreHarness, reason: EndReason
) -> None:
    online.command(online.authorized("v1"))
    online.feed(SessionFunded(2500))
    online.feed(ItemApproved(4, 1200))

    dispensed, ended = online.published(online.feed(SessionEnded(reason)))

    assert isinstance(dispensed, Dispensed)
    assert not dispensed.success
    assert isinstance(ended, Ended)
    assert ended.reason == reason
    assert ended.total == Money(0, "NOK")


def test_a_session_nobody_asked_for_is_cancelled(online: CoreHarness) -> None:
    actions = online.feed(SessionFunded(100))

    assert CancelSession(None) in actions
    assert online.published(actions) == []


# -- duplicates -------------------------------------------------------------------------------


def test_repeated_authorized_while_starting_does_nothing(online: CoreHarness) -> None:
    online.command(online.authorized("v1"))

    actions = online.command(online.authorized("v1"))

    assert not any(isinstance(a, StartSession | Persist | Publish) for a in actions)
    assert "vend.duplicate_while_starting" in online.logged(actions)


def test_repeated_authorized_of_an_open_vend_republishes_started(online: CoreHarness) -> None:
    online.command(online.authorized("v1"))
    (started,) = online.published(online.feed(SessionFunded(2500)))

    actions = online.command(online.authorized("v1"))

    assert online.published(actions) == [started]  # same id: an idempotent consumer drops it
    assert not any(isinstance(a, StartSession | Persist) for a in actions)


def test_repeated_authorized_after_the_end_republishes_ended(online: CoreHarness) -> None:
    ended = online.published(online.run_vend("v1"))[-1]

    actions = online.command(online.authorized("v1"))

    assert online.published(actions) == [ended]
    assert not any(isinstance(a, StartSession) for a in actions)


def test_repeated_authorized_of_a_rejected_vend_answers_duplicate(online: CoreHarness) -> None:
    online.command(online.authorized("v1", ttl_s=-1))

    (rejected,) = online.published(online.command(online.authorized("v1")), "evt/rejected")

    assert isinstance(rejected, Rejected)
    assert rejected.reason == RejectReason.DUPLICATE


def test_a_restart_never_starts_a_second_session_for_a_vend(harness: CoreHarness) -> None:
    harness.command(harness.authorized("v1"))
    harness.restart()  # crashed after BEGIN SESSION was asked

    actions = harness.command(harness.authorized("v1"))

    assert not any(isinstance(a, StartSession) for a in actions)


# -- cancel -----------------------------------------------------------------------------------


def test_cancel_of_an_open_vend_asks_the_reader(online: CoreHarness) -> None:
    online.command(online.authorized("v1"))
    online.feed(SessionFunded(2500))
    now = online.now

    actions = online.command(Cancel.create(now=now, vend_id="v1"))

    assert CancelSession("v1") in actions
    (ended,) = online.published(online.feed(SessionEnded(EndReason.CANCELLED)))
    assert isinstance(ended, Ended)
    assert ended.reason == EndReason.CANCELLED


def test_cancel_of_a_starting_vend_ends_it_at_once(online: CoreHarness) -> None:
    online.command(online.authorized("v1"))

    actions = online.command(Cancel.create(now=online.now, vend_id="v1"))

    assert CancelSession("v1") in actions
    (ended,) = online.published(actions)
    assert isinstance(ended, Ended)
    assert ended.reason == EndReason.CANCELLED


def test_cancel_before_authorized_blocks_a_late_authorization(online: CoreHarness) -> None:
    (ended,) = online.published(online.command(Cancel.create(now=online.now, vend_id="v9")))

    actions = online.command(online.authorized("v9"))

    assert isinstance(ended, Ended)
    assert ended.dispensed == ()
    assert not any(isinstance(a, StartSession) for a in actions)
    assert online.published(actions) == [ended]


def test_cancel_after_the_end_is_only_logged(online: CoreHarness) -> None:
    online.run_vend("v1")

    actions = online.command(Cancel.create(now=online.now, vend_id="v1"))

    assert online.logged(actions) == ["vend.cancel_after_end"]
    assert len(actions) == 1


# -- outbox, ack, connection ------------------------------------------------------------------


def test_ack_removes_exactly_the_named_events(online: CoreHarness) -> None:
    started, dispensed, ended = online.published(online.run_vend("v1"))

    actions = online.command(Ack.create(now=online.now, events=[started.id, ended.id, "nope"]))

    assert isinstance(actions[0], Persist)
    assert set(actions[0].commit.acked) == {started.id, ended.id}
    assert [e.id for e in online.core.outbox] == [dispensed.id]
    assert [e.id for e in online.store.load().pending] == [dispensed.id]


def test_connect_announces_status_hello_then_resends_the_outbox_in_order(
    harness: CoreHarness,
) -> None:
    harness.run_vend("v1")  # offline: written, not published
    assert len(harness.core.outbox) == 3

    actions = harness.connect()

    status, hello, *events = harness.published(actions)
    assert isinstance(status, Status)
    assert status.state == StatusState.ONLINE
    assert status.boot_id == "boot-1"
    assert isinstance(hello, Hello)
    assert hello.outbox == 3
    assert hello.boot_id == "boot-1"
    assert [type(e) for e in events] == [Started, Dispensed, Ended]
    assert [e.seq for e in events] == sorted(e.seq for e in events)  # type: ignore[attr-defined]


def test_events_are_not_published_while_disconnected(online: CoreHarness) -> None:
    online.feed(Disconnected("broker gone"))

    actions = online.run_vend("v1")

    assert online.published(actions) == []
    assert len(online.core.outbox) == 3


def test_hello_lists_the_open_vend(online: CoreHarness) -> None:
    online.command(online.authorized("v1"))
    online.feed(SessionFunded(2500))

    (hello,) = online.published(online.feed(Connected()), "evt/hello")

    assert isinstance(hello, Hello)
    assert hello.open_vends == ("v1",)


def test_resend_sends_only_events_older_than_the_interval(online: CoreHarness) -> None:
    online.command(online.authorized("v1"))
    (started,) = online.published(online.feed(SessionFunded(2500)))
    online.advance(10)
    (dispensed,) = online.published(online.feed(ItemResult(1, 500, True)))

    online.advance(6)  # started is 16 s old, dispensed 6 s (interval 15 s)
    assert online.published(online.feed(ResendDue())) == [started]

    online.advance(10)
    assert online.published(online.feed(ResendDue())) == [dispensed]


def test_acked_events_are_never_resent(online: CoreHarness) -> None:
    events = online.published(online.run_vend("v1"))
    online.command(Ack.create(now=online.now, events=[e.id for e in events]))
    online.advance(3600)

    assert online.published(online.feed(ResendDue())) == []
    assert online.published(online.feed(Connected()), "evt/ended") == []


def test_each_resend_check_logs_what_it_resent(online: CoreHarness) -> None:
    online.run_vend("v1")  # three events in the outbox, just sent
    quiet = [a for a in online.feed(ResendDue()) if isinstance(a, Log)]
    online.advance(3600)
    due = [a for a in online.feed(ResendDue()) if isinstance(a, Log)]

    checked = {"connected": True, "resent": 0, "outbox": 3}
    assert quiet == [Log.debug("outbox.checked", **checked)]
    assert due[-1] == Log.debug("outbox.checked", **{**checked, "resent": 3})


# -- lifecycle --------------------------------------------------------------------------------


def test_boot_sets_the_last_will_to_offline_with_the_same_boot_id(
    make_harness: Callable[[], CoreHarness],
) -> None:
    harness = make_harness()

    actions = harness.restart()

    (will,) = [a for a in actions if isinstance(a, SetWill)]
    status = Status.decode(will.payload)
    assert (status.state, status.boot_id) == (StatusState.OFFLINE, "boot-2")
    assert any(isinstance(a, ApplySettings) for a in actions)


def test_a_clean_stop_publishes_offline(online: CoreHarness) -> None:
    (status,) = online.published(online.feed(ShuttingDown()))

    assert isinstance(status, Status)
    assert status.state == StatusState.OFFLINE


def test_restart_ends_an_interrupted_vend_and_keeps_its_items(harness: CoreHarness) -> None:
    harness.command(harness.authorized("v1"))
    harness.feed(SessionFunded(2500))
    harness.feed(ItemResult(3, 2000, True))
    harness.feed(ItemApproved(5, 300))  # dropping when the process died

    harness.restart()

    *_, dispensed, ended = [decode_event(e) for e in harness.core.outbox]
    assert isinstance(dispensed, Dispensed)
    assert (dispensed.item, dispensed.success) == (5, False)
    assert isinstance(ended, Ended)
    assert ended.reason == EndReason.BOARD_RESET
    assert ended.total == Money(2000, "NOK")
    assert harness.core.open_vends == ()


def test_restart_rejects_a_vend_that_never_started(harness: CoreHarness) -> None:
    harness.command(harness.authorized("v1"))

    harness.restart()

    rejected = decode_event(harness.core.outbox[-1])
    assert isinstance(rejected, Rejected)
    assert rejected.reason == RejectReason.BOARD_DOWN


def test_seq_grows_across_restarts(harness: CoreHarness) -> None:
    first = [e.seq for e in harness.core.outbox] or [0]
    harness.run_vend("v1")
    before = max(e.seq for e in harness.core.outbox)
    harness.restart()
    harness.run_vend("v2")

    after = [e.seq for e in harness.core.outbox if e.vend_id == "v2"]
    assert min(after) > before > max(first)


# -- config and telemetry ---------------------------------------------------------------------


def test_config_applies_valid_settings_and_keeps_them(harness: CoreHarness) -> None:
    actions = harness.command(
        Config.create(now=harness.now, settings={"selection_timeout_s": 30, "colour": "red"})
    )

    (apply,) = [a for a in actions if isinstance(a, ApplySettings)]
    assert apply.settings.selection_timeout_s == 30
    assert "config.setting_refused" in harness.logged(actions)
    harness.restart()
    assert harness.core.settings.selection_timeout_s == 30


@pytest.mark.parametrize("value", [0, -5, "30", True, None, 1e9])
def test_config_refuses_bad_values(harness: CoreHarness, value: object) -> None:
    actions = harness.command(
        Config.create(now=harness.now, settings={"selection_timeout_s": value})
    )

    assert not any(isinstance(a, ApplySettings | Persist) for a in actions)
    assert harness.core.settings.selection_timeout_s == 60


def test_telemetry_reports_board_outbox_and_link(online: CoreHarness) -> None:
    online.run_vend("v1")
    board = Board("enabled", link_up=True, can_begin_session=True)

    (telemetry,) = online.published(online.feed(TelemetryDue(42, board)))

    assert isinstance(telemetry, Telemetry)
    assert (telemetry.uptime_s, telemetry.board, telemetry.outbox) == (42, "enabled", 3)
    assert telemetry.extra["link_up"] is True


def test_no_telemetry_while_offline(harness: CoreHarness) -> None:
    assert harness.feed(TelemetryDue(1, Board())) == []


def decode_event(event: OutboxEvent) -> Message:
    return decode(event.name, event.payload)


def test_an_ack_naming_an_event_twice_removes_it_once(online: CoreHarness) -> None:
    started, *_ = online.published(online.run_vend("v1"))

    actions = online.command(Ack.create(now=online.now, events=[started.id, started.id]))

    assert isinstance(actions[0], Persist)
    assert actions[0].commit.acked == (started.id,)

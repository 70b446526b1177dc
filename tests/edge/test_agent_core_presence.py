"""The pure core's presence: status seq per connect attempt, pings, the cloud's presence hint."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from vendgate.edge.core import (
    Action,
    Board,
    CloudPresenceArrived,
    Connected,
    Connecting,
    Disconnected,
    Persist,
    Publish,
    ResendDue,
    SessionFunded,
    SetWill,
    ShuttingDown,
)
from vendgate.protocol.mqtt import (
    CloudPresence,
    Ping,
    Pong,
    Started,
    Status,
    StatusState,
)

BOARD_DOWN = Board(state="inactive", link_up=False, can_begin_session=False)
IN_SESSION = Board(state="session_idle", link_up=True, can_begin_session=False)

if TYPE_CHECKING:
    from conftest import CoreHarness


def will_of(actions: Sequence[Action]) -> Status:
    (will,) = [a for a in actions if isinstance(a, SetWill)]
    return Status.decode(will.payload)


def online_of(harness: CoreHarness, actions: Sequence[Action]) -> Status:
    (status,) = harness.published(actions, "status")
    assert isinstance(status, Status)
    return status


# -- status seq ---------------------------------------------------------------------------------


def test_every_attempt_gets_a_will_that_beats_its_online(harness: CoreHarness) -> None:
    seqs = []
    for _ in range(3):
        will = will_of(harness.feed(Connecting()))
        online = online_of(harness, harness.feed(Connected()))
        harness.feed(Disconnected("gone"))
        assert (will.state, online.state) == (StatusState.OFFLINE, StatusState.ONLINE)
        assert will.boot_id == online.boot_id == "boot-1"
        seqs += [online.seq, will.seq]
    assert seqs == [2, 3, 4, 5, 6, 7]  # the will of connection k is 2k+1, its online 2k


def test_failed_attempts_only_skip_numbers(harness: CoreHarness) -> None:
    harness.feed(Connecting())  # refused: no Connected follows
    will = will_of(harness.feed(Connecting()))
    online = online_of(harness, harness.feed(Connected()))
    assert (online.seq, will.seq) == (4, 5)


def test_a_clean_stop_says_offline_with_the_wills_seq(harness: CoreHarness) -> None:
    will = will_of(harness.feed(Connecting()))
    harness.feed(Connected())
    (offline,) = harness.published(harness.feed(ShuttingDown()), "status")
    assert isinstance(offline, Status)
    assert (offline.state, offline.seq) == (StatusState.OFFLINE, will.seq)


def test_a_shell_that_never_announces_attempts_still_orders_its_statuses(
    harness: CoreHarness,
) -> None:
    will = will_of(harness.restart())
    online = online_of(harness, harness.connect())
    assert (online.seq, will.seq) == (0, 1)


# -- ping ---------------------------------------------------------------------------------------


def ping(harness: CoreHarness, ttl_s: float = 10) -> Ping:
    return Ping.create(now=harness.now, expires_at=harness.now + timedelta(seconds=ttl_s))


def pong_of(harness: CoreHarness, actions: Sequence[Action]) -> Pong:
    (pong,) = harness.published(actions, "evt/pong")
    assert isinstance(pong, Pong)
    return pong


def test_a_ping_is_answered_from_the_board_as_it_is(online: CoreHarness) -> None:
    question = ping(online)
    actions = online.command(question)
    pong = pong_of(online, actions)

    assert (pong.ping_id, pong.boot_id, pong.board) == (question.id, "boot-1", "enabled")
    assert (pong.can_vend, pong.open_vends) == (True, ())
    # Answered directly: nothing written to the outbox, no seq taken.
    assert online.core.outbox == ()
    assert not any(isinstance(a, Persist) for a in actions)
    assert [a.event_id for a in actions if isinstance(a, Publish)] == [None]


@pytest.mark.parametrize("board", [BOARD_DOWN, IN_SESSION])
def test_a_board_that_cannot_begin_a_session_cannot_vend(online: CoreHarness, board: Board) -> None:
    pong = pong_of(online, online.command(ping(online), board))
    assert (pong.board, pong.can_vend) == (board.state, False)


def test_an_open_vend_is_named_and_blocks_a_new_one(online: CoreHarness) -> None:
    online.command(online.authorized("v1"))
    online.feed(SessionFunded(2500))

    pong = pong_of(online, online.command(ping(online)))

    assert (pong.can_vend, pong.open_vends) == (False, ("v1",))


def test_an_expired_ping_is_not_answered(online: CoreHarness) -> None:
    question = ping(online, ttl_s=1)
    online.advance(1)
    actions = online.command(question)
    assert online.published(actions) == []
    assert "ping.expired" in online.logged(actions)


# -- the cloud's presence -----------------------------------------------------------------------


def presence(harness: CoreHarness, state: StatusState = StatusState.ONLINE) -> CloudPresence:
    return CloudPresence.create(now=harness.now, state=state, replica="vendgate-cloud")


def test_the_cloud_coming_online_gets_every_unacked_event_at_once(online: CoreHarness) -> None:
    online.command(online.authorized("v1"))
    (started,) = online.published(online.feed(SessionFunded(2500)))
    online.advance(1)  # far inside the resend interval
    assert online.published(online.feed(ResendDue())) == []

    hint = presence(online)
    resent = online.published(online.feed(CloudPresenceArrived(hint.encode())))
    again = online.published(online.feed(CloudPresenceArrived(hint.encode(), retained=True)))

    assert resent == [started]
    assert isinstance(started, Started)
    assert again == []  # the same message, retained on our re-subscribe: no news


def test_a_new_online_resends_again_and_offline_does_nothing(online: CoreHarness) -> None:
    online.command(online.authorized("v1"))
    (started,) = online.published(online.feed(SessionFunded(2500)))
    online.feed(CloudPresenceArrived(presence(online).encode()))

    offline = presence(online, StatusState.OFFLINE)
    assert online.published(online.feed(CloudPresenceArrived(offline.encode()))) == []
    replica_back = presence(online)
    assert online.published(online.feed(CloudPresenceArrived(replica_back.encode()))) == [started]


def test_offline_the_hint_is_remembered_for_nothing(harness: CoreHarness) -> None:
    harness.command(harness.authorized("v1"))
    harness.feed(SessionFunded(2500))
    assert harness.published(harness.feed(CloudPresenceArrived(presence(harness).encode()))) == []


def test_a_malformed_presence_is_logged_and_dropped(online: CoreHarness) -> None:
    actions = online.feed(CloudPresenceArrived(b'{"v":1,"state":"online"}'))
    assert online.published(actions) == []
    assert "cloud.presence_malformed" in online.logged(actions)

"""`record_status`: which `status` message wins, pure (a Machine row in memory, no database).

Within one boot the status `seq` orders them (online 2k, will 2k+1); from senders without seq
an `offline` of the current boot wins over its `online`; across boots the timestamp decides.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vendgate.cloud.db import Machine
from vendgate.cloud.machines import record_status
from vendgate.protocol.mqtt import Status, StatusState

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ONLINE, OFFLINE = StatusState.ONLINE, StatusState.OFFLINE


def machine() -> Machine:
    return Machine(id="m1", name="Lobby", created_at=T0)


def status(state: StatusState, boot: str, at: float, seq: int | None = None) -> Status:
    return Status.create(
        now=T0 + timedelta(seconds=at), state=state, boot_id=boot, versions={}, seq=seq
    )


def apply(row: Machine, *statuses: Status) -> list[bool]:
    return [record_status(row, s, T0 + timedelta(hours=1)) for s in statuses]


def test_the_will_of_a_connection_beats_its_online_although_it_is_older() -> None:
    row = machine()
    # The will is written at connect time: its ts is before the `online` sent after CONNACK.
    will = status(OFFLINE, "b1", at=0.0, seq=3)
    online = status(ONLINE, "b1", at=0.5, seq=2)
    assert apply(row, online, will) == [True, True]
    assert not row.online
    assert row.status_seq == 3


def test_a_stale_will_never_beats_a_later_connection() -> None:
    row = machine()
    assert apply(
        row,
        status(ONLINE, "b1", at=1, seq=2),
        status(OFFLINE, "b1", at=0, seq=3),  # connection 1 died
        status(ONLINE, "b1", at=5, seq=4),  # connection 2
        status(OFFLINE, "b1", at=0, seq=3),  # the old will delivered again
        status(ONLINE, "b1", at=5, seq=4),  # the retained copy, re-subscribed
    ) == [True, True, True, False, False]
    assert row.online


def test_without_seq_this_boots_offline_wins_and_a_later_online_needs_a_newer_ts() -> None:
    row = machine()
    assert apply(
        row,
        status(ONLINE, "b1", at=10),
        status(OFFLINE, "b1", at=0),  # older ts, still the same boot's will
        status(ONLINE, "b1", at=5),  # older than that offline's ts: a stale copy
    ) == [True, True, False]
    assert not row.online
    assert apply(row, status(ONLINE, "b1", at=20)) == [True]
    assert row.online


def test_one_side_without_seq_falls_back_to_offline_wins() -> None:
    row = machine()
    assert apply(row, status(ONLINE, "b1", at=10, seq=2), status(OFFLINE, "b1", at=0)) == [
        True,
        True,
    ]
    assert not row.online


@pytest.mark.parametrize("seq", [None, 7])
def test_across_boots_the_clock_decides(seq: int | None) -> None:
    row = machine()
    assert apply(
        row,
        status(ONLINE, "b2", at=10, seq=seq),
        status(OFFLINE, "b1", at=5, seq=99),  # the old boot's will, late: older
        status(OFFLINE, "b2", at=0, seq=None if seq is None else seq + 1),
    ) == [True, False, True]
    assert (row.online, row.boot_id) == (False, "b2")


statuses = st.builds(
    status,
    st.sampled_from([ONLINE, OFFLINE]),
    st.just("b1"),
    st.floats(min_value=0, max_value=100),
    st.integers(min_value=0, max_value=50),
)


@given(st.lists(statuses, min_size=1, max_size=8))
def test_with_seq_the_outcome_is_the_highest_seq_whatever_the_order(
    received: list[Status],
) -> None:
    row = machine()
    apply(row, *received)
    best = max(s.seq for s in received if s.seq is not None)
    assert row.status_seq == best
    first_with_best = next(s for s in received if s.seq == best)
    assert row.online is (first_with_best.state is ONLINE)

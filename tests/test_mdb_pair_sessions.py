"""MDB §7.7's example sessions, replayed through the reader and the VMC back to back in memory.

Each test drives the pair on a fake clock and compares the bus, byte for byte, with the flow
the spec shows for that example (idle POLL/ACK pairs left out), and the reader's events with
what the agent must hear. Funds 2500 = 09C4; Cola is item 101 (0065) at 2000 (07D0).
"""

from __future__ import annotations

from test_mdb_pair_kit import Pair

from vendgate.boardsim import VendOutcome, VmcConfig
from vendgate.edge.cashless import (
    ApprovalSent,
    BoardReset,
    DenialSent,
    ReaderEnabled,
    SessionEnded,
    SessionStarted,
    VendFailed,
    VendRequested,
    VendSucceeded,
)
from vendgate.protocol.mqtt import EndReason

BEGIN_SESSION_2500 = ["VMC 12* 12", "CD 03 09 C4 D0*", "VMC 00"]
COLA_REQUEST = "VMC 13* 00 07 D0 00 65 4F"
COLA_APPROVED = ["CD 05 07 D0 DC*", "VMC 00"]
SESSION_COMPLETE = ["VMC 13* 04 17", "CD 07 07*", "VMC 00"]

POWER_UP = [
    "VMC 10* 10",  # RESET
    "CD 00*",
    "VMC 12* 12",  # POLL until JUST RESET
    "CD 00 00*",
    "VMC 00",
    "VMC 11* 00 02 00 00 00 13",  # SETUP config: VMC level 2
    "CD 01 01 15 78 01 02 1E 03 B3*",  # READER CONFIG: level 1, NOK, SF 1, DP 2, 30 s, refund+multi
    "VMC 00",
    "VMC 11* 01 0B B8 01 F4 CA",  # SETUP prices: max 3000, min 500
    "CD 00*",
    "VMC 17* 00 56 47 53 30 30 30 30 30 30 30 30 30 30 30 31 62 6F 61 72 64 2D 73 69 6D 20 20 20"
    " 01 00 27",  # EXPANSION REQUEST ID
    "CD 09 56 47 54 30 30 30 30 30 30 30 30 30 30 30 31 76 65 6E 64 67 61 74 65 20 20 20 20 01 00"
    " 0A*",  # PERIPHERAL ID: VGT 000000000001 vendgate 01.00
    "VMC 00",
    "VMC 14* 01 15",  # READER ENABLE
    "CD 00*",
]


def started_pair(vmc_config: VmcConfig | None = None) -> Pair:
    pair = Pair(vmc_config=vmc_config)
    pair.start()
    pair.take_trace()
    pair.take_reader_events()
    return pair


def test_power_up_sequence_app_a3() -> None:
    pair = Pair()
    pair.start()
    assert pair.take_trace() == POWER_UP
    assert [type(e).__name__ for e in pair.take_reader_events()] == [
        "LinkRestored",
        "BoardReset",
        "ReaderEnabled",
    ]


def test_example_1_single_vend() -> None:
    pair = started_pair()
    pair.open_session(2500)
    pair.vmc.select(1, pair.now)
    pair.run_for(3)
    assert pair.take_trace() == [
        *BEGIN_SESSION_2500,
        COLA_REQUEST,
        *COLA_APPROVED,
        "VMC 13* 02 00 65 7A",  # VEND SUCCESS item 101
        "CD 00*",
        *SESSION_COMPLETE,
    ]
    assert pair.take_reader_events() == [
        SessionStarted(2500),
        VendRequested(2000, 101),
        ApprovalSent(2000, 101, 2000),
        VendSucceeded(101, 2000, 2000),
        SessionEnded(EndReason.COMPLETED),
    ]


def test_example_2_multi_vend_stops_at_the_credit() -> None:
    pair = started_pair(VmcConfig(multivend=True))
    pair.open_session(2500)
    for slot in (2, 4, 2):  # 1500 + 500, then 1500 more than the 500 left
        pair.vmc.select(slot, pair.now)
        pair.run_for(3)
    pair.vmc.walk_away()
    pair.run_for(61)
    assert pair.take_trace() == [
        *BEGIN_SESSION_2500,
        "VMC 13* 00 05 DC 00 66 5A",
        "CD 05 05 DC E6*",
        "VMC 00",
        "VMC 13* 02 00 66 7B",
        "CD 00*",
        "VMC 13* 00 01 F4 00 68 70",
        "CD 05 01 F4 FA*",
        "VMC 00",
        "VMC 13* 02 00 68 7D",
        "CD 00*",
        "VMC 13* 00 05 DC 00 66 5A",
        "CD 06 06*",  # VEND DENIED
        "VMC 00",
        "VMC 12* 12",
        "CD 04 04*",  # SESSION CANCEL REQUEST after the selection timeout
        "VMC 00",
        *SESSION_COMPLETE,
    ]
    events = pair.take_reader_events()
    assert [e for e in events if isinstance(e, VendSucceeded)] == [
        VendSucceeded(102, 1500, 1500),
        VendSucceeded(104, 500, 500),
    ]
    assert DenialSent(1500, 102, "exceeds_credit") in events
    assert events[-1] == SessionEnded(EndReason.TIMEOUT)


def test_example_3_session_cancelled_by_the_reader() -> None:
    pair = started_pair()
    pair.open_session(2500)
    pair.reader.cancel_session()
    pair.run_for(3)
    assert pair.take_trace() == [
        *BEGIN_SESSION_2500,
        "VMC 12* 12",
        "CD 04 04*",
        "VMC 00",
        *SESSION_COMPLETE,
    ]
    assert pair.take_reader_events() == [SessionStarted(2500), SessionEnded(EndReason.CANCELLED)]


def test_example_5_vend_failure() -> None:
    pair = started_pair()
    pair.open_session(2500)
    pair.vmc.jam(1)
    pair.vmc.select(1, pair.now)
    pair.run_for(3)
    assert pair.take_trace() == [
        *BEGIN_SESSION_2500,
        COLA_REQUEST,
        *COLA_APPROVED,
        "VMC 13* 03 16",  # VEND FAILURE
        "CD 00*",  # ACK: refund done (nothing was charged)
        *SESSION_COMPLETE,
    ]
    assert pair.take_reader_events() == [
        SessionStarted(2500),
        VendRequested(2000, 101),
        ApprovalSent(2000, 101, 2000),
        VendFailed(101, 2000, 2000),
        SessionEnded(EndReason.COMPLETED),
    ]


def test_example_6_vend_denied() -> None:
    pair = started_pair()
    pair.open_session(2500)
    pair.vmc.select(3, pair.now)  # Sandwich 3000 > 2500
    pair.run_for(3)
    assert pair.take_trace() == [
        *BEGIN_SESSION_2500,
        "VMC 13* 00 0B B8 00 67 3D",
        "CD 06 06*",
        "VMC 00",
        *SESSION_COMPLETE,
    ]
    assert pair.take_reader_events() == [
        SessionStarted(2500),
        VendRequested(3000, 103),
        DenialSent(3000, 103, "exceeds_credit"),
        SessionEnded(EndReason.COMPLETED),
    ]
    assert pair.machine.dispensed == []


def test_vmc_reset_between_approved_and_success_counts_as_success() -> None:
    pair = started_pair()
    pair.open_session(2500)
    pair.vmc.select(1, pair.now)
    pair.run_for(0.3)  # approved and ACKed; the motor is turning
    pair.vmc.power_cycle(pair.now, off_s=0.5)
    pair.run_for(3)
    assert pair.take_trace() == [*BEGIN_SESSION_2500, COLA_REQUEST, *COLA_APPROVED, *POWER_UP]
    assert pair.take_reader_events() == [
        SessionStarted(2500),
        VendRequested(2000, 101),
        ApprovalSent(2000, 101, 2000),
        BoardReset(),
        VendSucceeded(101, 2000, 2000),  # §7.4.7
        SessionEnded(EndReason.BOARD_RESET),
        ReaderEnabled(),
    ]
    outcome = pair.vmc.outcomes[-1]
    assert outcome == VendOutcome(1, 1, 101, 2000, "success", reported=False, charged=2000)

"""The VMC alone, against a reader played by hand: what it sends, and when (fake clock)."""

from __future__ import annotations

import pytest

from vendgate.boardsim import (
    KeypadError,
    Machine,
    Phase,
    PowerOff,
    PowerOn,
    ReaderReady,
    SessionOpened,
    SessionStep,
    Slot,
    VendOutcome,
    Vmc,
    VmcConfig,
    VmcEvent,
)
from vendgate.protocol import mdb

SLOTS = (Slot(1, 101, "Cola", 2000), Slot(2, 102, "Water", 1500, stock=0))
CONFIG_DATA = mdb.ReaderConfigData(1, 0x1578, 1, 2, 30, int(mdb.ReaderOptions.CAN_REFUND))
READER_ID = mdb.PeripheralId("VGT", "1", "x", 0x0100)
ACK = "VMC 00"
POLL = "VMC 12* 12"


class Board:
    """A VMC driven by hand: ``sent()`` is what it put on the bus, ``reply()`` answers it."""

    def __init__(self, config: VmcConfig | None = None) -> None:
        self.vmc = Vmc(Machine(SLOTS), config or VmcConfig(), now=0.0)
        self.now = 0.0
        self.vmc.handle_timer(0.0)

    def sent(self) -> list[str]:
        return [mdb.format_capture_line(b.direction, b.words) for b in self.vmc.blocks_to_send()]

    def reply(self, *messages: mdb.CdMessage) -> list[str]:
        """Answer the VMC; what it sends at once (ACK) and after its inter-command gap."""
        self.vmc.receive_block(mdb.response_block(list(messages)), self.now)
        return self.sent() + self.wait(self.vmc.config.command_gap_s)

    def wait(self, seconds: float) -> list[str]:
        """Let time pass, firing every deadline on the way."""
        until = self.now + seconds
        while (deadline := self.vmc.next_deadline()) is not None and deadline <= until:
            self.now = max(self.now, deadline)
            self.vmc.handle_timer(self.now)
        self.now = until
        return self.sent()

    def run(self, seconds: float) -> list[str]:
        """Let time pass with a quiet reader that ACKs every POLL; the other blocks sent."""
        until, others = self.now + seconds, []
        while (deadline := self.vmc.next_deadline()) is not None and deadline <= until:
            self.now = max(self.now, deadline)
            self.vmc.handle_timer(self.now)
            for line in self.sent():
                if line == POLL:
                    self.reply(mdb.Ack())
                else:
                    others.append(line)
        self.now = until
        return others

    def events(self) -> list[VmcEvent]:
        out = []
        while (event := self.vmc.next_event()) is not None:
            out.append(event)
        return out

    def ready(self, config_data: mdb.ReaderConfigData = CONFIG_DATA) -> Board:
        self.sent()
        self.reply(mdb.Ack())
        self.wait(0.2)
        self.reply(mdb.JustReset())
        self.reply(config_data)
        self.reply(mdb.Ack())
        self.reply(READER_ID)
        self.reply(mdb.Ack())
        assert self.vmc.ready
        self.events()
        return self

    def session(self, funds: int = 2500) -> Board:
        self.wait(0.2)
        assert self.reply(mdb.BeginSession(funds)) == [ACK]
        self.reply(mdb.Ack())  # nothing queued: a ping of the ACK we just sent is harmless
        self.events()
        return self


def test_power_up_polls_for_just_reset_then_sets_up_the_reader() -> None:
    board = Board()
    assert board.sent() == ["VMC 10* 10"]
    assert board.reply(mdb.Ack()) == []
    assert board.wait(0.2) == [POLL]  # t-setup, then POLL until JUST RESET
    assert board.reply(mdb.Ack()) == []
    assert board.wait(0.2) == [POLL]
    assert board.reply(mdb.JustReset()) == [ACK, "VMC 11* 00 02 00 00 00 13"]


def test_config_data_and_peripheral_id_may_come_at_a_later_poll() -> None:
    board = Board()
    board.reply(mdb.Ack())
    board.wait(0.2)
    board.reply(mdb.JustReset())
    assert board.reply(mdb.Ack()) == []  # SETUP accepted, data later
    assert board.wait(0.2) == [POLL]
    assert board.reply(CONFIG_DATA) == [ACK, "VMC 11* 01 07 D0 05 DC CA"]  # max 2000, min 1500
    assert board.reply(mdb.Ack())[0].startswith("VMC 17* 00 56 47 53")
    board.reply(mdb.Ack())
    assert board.wait(0.2) == [POLL]
    assert board.reply(READER_ID) == [ACK, "VMC 14* 01 15"]
    board.reply(mdb.Ack())
    assert board.vmc.phase is Phase.READY
    assert board.events() == [ReaderReady()]


def test_just_reset_while_ready_reinitialises_without_a_reset() -> None:
    board = Board().ready()
    board.wait(0.2)
    assert board.reply(mdb.JustReset()) == [ACK, "VMC 11* 00 02 00 00 00 13"]


def test_command_out_of_sequence_makes_the_vmc_reset_the_reader() -> None:
    board = Board().ready()
    board.wait(0.2)
    assert board.reply(mdb.CommandOutOfSequence()) == [ACK, "VMC 10* 10"]


def test_a_damaged_reply_is_answered_with_ret() -> None:
    board = Board()
    board.sent()
    # JUST RESET with a wrong checksum
    bad = mdb.Block(mdb.Direction.CD, (mdb.Word(0x00), mdb.Word(0x01, True)))
    board.vmc.receive_block(bad, 0.0)
    assert board.sent() == ["VMC AA"]


def test_silence_is_repeated_then_polled_then_reset_after_the_non_response_time() -> None:
    board = Board(VmcConfig(non_response_s=5.0)).ready()
    assert board.wait(0.2) == [POLL]
    assert board.wait(0.1) == [POLL]  # response timeout: repeat
    assert board.wait(0.1) == [POLL]
    assert board.wait(0.1) == []  # given up; next try at the poll interval
    sent = board.wait(40.0)
    assert "VMC 10* 10" in sent  # after the reader's 30 s max response time
    assert sent.index("VMC 10* 10") > 100


def test_a_session_opens_on_begin_session_and_repeats_are_ignored() -> None:
    board = Board().ready().session(2500)
    assert board.vmc.funds == 2500
    board.wait(0.2)
    assert board.reply(mdb.BeginSession(2500)) == [ACK]
    assert board.events() == []


def test_keypad_refuses_without_credit_unknown_and_sold_out_slots() -> None:
    board = Board().ready()
    with pytest.raises(KeypadError, match="no credit"):
        board.vmc.select(1, board.now)
    board.session()
    with pytest.raises(KeypadError, match="no slot 9"):
        board.vmc.select(9, board.now)
    with pytest.raises(KeypadError, match="sold out"):
        board.vmc.select(2, board.now)


def test_select_sends_vend_request_and_approval_at_a_poll_dispenses() -> None:
    board = Board(VmcConfig(dispense_s=0.5)).ready().session()
    board.vmc.select(1, board.now)
    assert board.wait(0.0) == ["VMC 13* 00 07 D0 00 65 4F"]
    with pytest.raises(KeypadError, match="busy"):
        board.vmc.select(1, board.now)
    assert board.reply(mdb.Ack()) == []  # approval comes later
    board.wait(0.2)
    assert board.reply(mdb.VendApproved(2000)) == [ACK]
    assert board.vmc.step is SessionStep.DISPENSING
    assert board.reply(mdb.VendApproved(2000)) == []  # stale repeat: nothing outstanding
    assert board.run(0.5) == ["VMC 13* 02 00 65 7A"]
    assert board.reply(mdb.Ack()) == ["VMC 13* 04 17"]
    assert board.reply(mdb.EndSession()) == [ACK]
    events = board.events()
    assert VendOutcome(1, 1, 101, 2000, "success", reported=True, charged=2000) in events
    assert board.vmc.funds is None  # the session is over


def test_a_denied_vend_ends_a_single_vend_session() -> None:
    board = Board().ready().session()
    board.vmc.select(1, board.now)
    board.wait(0.0)
    assert board.reply(mdb.VendDenied()) == [ACK, "VMC 13* 04 17"]
    assert board.vmc.outcomes[-1].result == "denied"


def test_session_cancel_request_during_a_vend_ends_the_session_after_it() -> None:
    board = Board(VmcConfig(dispense_s=0.5)).ready().session()
    board.vmc.select(1, board.now)
    board.wait(0.0)
    board.reply(mdb.VendApproved(2000))
    board.wait(0.2)
    assert board.reply(mdb.SessionCancelRequest()) == [ACK]
    assert board.run(0.35) == ["VMC 13* 02 00 65 7A"]  # the vend goes on
    assert board.reply(mdb.Ack()) == ["VMC 13* 04 17"]


def test_customer_cancel_sends_session_complete() -> None:
    board = Board().ready().session()
    board.vmc.cancel(board.now)
    assert board.wait(0.0) == ["VMC 13* 04 17"]


def test_prices_are_scaled_the_way_the_reader_counts() -> None:
    board = Board()
    board.reply(mdb.Ack())
    board.wait(0.2)
    board.reply(mdb.JustReset())
    sent = board.reply(mdb.ReaderConfigData(1, 0x1978, 5, 2, 30, 0))  # 1 unit = 5 cents
    assert sent[-1] == "VMC 11* 01 01 90 01 2C D0"  # max 400, min 300
    board.reply(mdb.Ack())
    board.reply(READER_ID)
    board.reply(mdb.Ack())
    board.session()
    board.vmc.select(1, board.now)
    assert board.wait(0.0) == ["VMC 13* 00 01 90 00 65 09"]


def test_power_cycle_silences_the_bus_then_boots_with_reset() -> None:
    board = Board(VmcConfig(power_off_s=3.0, dispense_s=0.5)).ready().session()
    board.vmc.select(1, board.now)
    board.wait(0.0)
    board.reply(mdb.VendApproved(2000))
    board.vmc.power_cycle(board.now)
    assert board.vmc.phase is Phase.OFF
    assert board.wait(2.9) == []
    assert board.wait(0.15) == ["VMC 10* 10"]
    events = board.events()
    turning = VendOutcome(1, 1, 101, 2000, "success", reported=False, charged=2000)
    assert turning in events  # the motor was turning: it dropped
    assert PowerOff() in events
    assert events[-1] == PowerOn()
    assert board.vmc.machine.slot(1).stock == 4


def test_status_line_says_what_is_going_on() -> None:
    board = Board().ready().session(2500)
    assert board.vmc.status_line() == "power=on reader=ready session=idle credit=2500"
    assert SessionOpened(1, 2500) not in board.events()  # already drained by session()


MULTIVEND_READER = mdb.ReaderConfigData(
    1, 0x1578, 1, 2, 30, int(mdb.ReaderOptions.CAN_REFUND | mdb.ReaderOptions.MULTIVEND)
)


def test_the_vmc_deducts_the_amount_approved_not_its_own_price() -> None:
    board = Board(VmcConfig(dispense_s=0.5, multivend=True)).ready(MULTIVEND_READER).session(2500)
    board.vmc.select(1, board.now)  # the VMC's price: 2000
    assert board.wait(0.0) == ["VMC 13* 00 07 D0 00 65 4F"]
    board.reply(mdb.VendApproved(1500))  # the reader's price authority says 1500
    assert board.run(0.5) == ["VMC 13* 02 00 65 7A"]
    board.reply(mdb.Ack())

    assert board.vmc.outcomes[-1] == VendOutcome(
        1, 1, 101, 2000, "success", reported=True, charged=1500
    )
    assert board.vmc.status_line() == (
        "power=on reader=ready session=idle credit=1000 "
        "last_vend=slot:1,item:101,success,charged:1500"
    )


def test_nothing_is_charged_for_a_denied_or_failed_vend() -> None:
    board = Board(VmcConfig(dispense_s=0.5, multivend=True)).ready(MULTIVEND_READER).session(2500)
    board.vmc.select(1, board.now)
    board.wait(0.0)
    board.reply(mdb.VendDenied())
    board.vmc.jam(1)
    board.vmc.select(1, board.now)
    board.wait(0.0)
    board.reply(mdb.VendApproved(2000))
    board.run(0.5)
    board.reply(mdb.Ack())

    assert [(o.result, o.charged) for o in board.vmc.outcomes] == [("denied", 0), ("failure", 0)]
    assert "credit=2500" in board.vmc.status_line()

"""The cashless reader alone: scripted VMC blocks in, reply bytes and events out, fake clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vendgate.edge.cashless import (
    ApprovalSent,
    BoardReset,
    CashlessConfig,
    DenialSent,
    LinkLost,
    LinkRestored,
    LocalMdbError,
    NeedData,
    Reader,
    ReaderDisabled,
    ReaderEvent,
    SessionEnded,
    SessionStarted,
    VendFailed,
    VendRequested,
    VendSucceeded,
)
from vendgate.protocol import mdb
from vendgate.protocol.mqtt import EndReason

if TYPE_CHECKING:
    from vendgate.edge.cashless import PriceMode

ACK = "CD 00*"
COLA = mdb.VendRequest(price=2000, item=101)


class Script:
    """A reader played by hand: ``send`` one VMC message, get the reply as capture lines."""

    def __init__(self, config: CashlessConfig | None = None) -> None:
        self.reader = Reader(config or CashlessConfig(selection_timeout_s=10.0))
        self.now = 0.0

    def send(self, message: mdb.VmcMessage, *, after: float = 0.1) -> list[str]:
        self.now += after
        self.reader.receive_block(mdb.command_block(message), self.now)
        return [mdb.format_capture_line(b.direction, b.words) for b in self.reader.blocks_to_send()]

    def events(self) -> list[ReaderEvent]:
        out: list[ReaderEvent] = []
        while not isinstance(event := self.reader.next_event(), NeedData):
            out.append(event)
        return out

    def enable(self) -> Script:
        for message in (mdb.Reset(), mdb.Poll(), mdb.Ack(), mdb.SetupConfig(2), mdb.Ack()):
            self.send(message)
        self.send(mdb.ReaderEnable())
        self.events()
        return self

    def session(self, funds: int = 2500) -> Script:
        self.reader.begin_session(funds, self.now)
        assert self.send(mdb.Poll())[0].startswith("CD 03 ")
        self.send(mdb.Ack())
        self.events()
        return self

    def vend(self, request: mdb.VendRequest = COLA) -> list[str]:
        reply = self.send(request)
        self.send(mdb.Ack())
        return reply


# --- initialisation ------------------------------------------------------------------------------


def test_a_new_reader_says_just_reset_until_acked() -> None:
    script = Script()
    assert script.reader.state == "inactive"
    assert script.send(mdb.Poll()) == ["CD 00 00*"]
    assert script.send(mdb.Poll()) == ["CD 00 00*"]  # not ACKed: repeated (§2.2)
    assert script.send(mdb.Ack()) == []
    assert script.send(mdb.Poll()) == [ACK]


def test_setup_answers_this_readers_config() -> None:
    config = CashlessConfig(currency="EUR", scale_factor=5, decimal_places=2, multivend=False)
    script = Script(config)
    script.send(mdb.Reset())
    (reply,) = script.send(mdb.SetupConfig(3, 0, 0, 0))
    words = mdb.parse_capture_line(reply)
    assert words is not None
    assert mdb.decode_responses(words.words) == (
        mdb.ReaderConfigData(1, 0x1978, 5, 2, 30, int(mdb.ReaderOptions.CAN_REFUND)),
    )
    assert script.reader.state == "disabled"


def test_expansion_request_id_gets_the_peripheral_id() -> None:
    config = CashlessConfig(manufacturer="ABC", serial="SN42", model="M1", software_version=0x0203)
    script = Script(config)
    (reply,) = script.send(mdb.ExpansionRequestId("VGS", "1", "sim", 0x0100))
    block = mdb.parse_capture_line(reply)
    assert block is not None
    assert mdb.decode_responses(block.words, dialect=mdb.Dialect(level=1)) == (
        mdb.PeripheralId("ABC", "SN42        ", "M1          ", 0x0203),
    )


def test_setup_makes_a_pending_just_reset_old_news() -> None:
    script = Script()
    script.send(mdb.SetupConfig(2))  # a VMC that skipped polling for JUST RESET
    script.send(mdb.Ack())
    assert script.send(mdb.Poll()) == [ACK]


def test_unacked_config_data_is_repeated_at_the_next_poll() -> None:
    script = Script()
    script.send(mdb.Reset())
    (config,) = script.send(mdb.SetupConfig(2))
    assert script.send(mdb.Poll()) == [config]


def test_enable_and_disable_report_events_and_states() -> None:
    script = Script()
    script.send(mdb.SetupConfig(2))
    assert script.send(mdb.ReaderEnable()) == [ACK]
    assert script.reader.state == "enabled"
    script.send(mdb.ReaderDisable())
    assert script.reader.state == "disabled"
    names = [type(e).__name__ for e in script.events()]
    assert names == ["LinkRestored", "ReaderEnabled", "ReaderDisabled"]


def test_reader_cancel_is_answered_cancelled() -> None:
    assert Script().enable().send(mdb.ReaderCancel()) == ["CD 08 08*"]


# --- sessions and money --------------------------------------------------------------------------


def test_begin_session_is_refused_without_changing_anything_until_enabled() -> None:
    script = Script()
    script.send(mdb.SetupConfig(2))
    script.send(mdb.Ack())
    with pytest.raises(LocalMdbError, match="disabled, not enabled"):
        script.reader.begin_session(2500, script.now)
    assert script.reader.state == "disabled"
    assert script.send(mdb.Poll()) == [ACK]


def test_begin_session_is_refused_when_the_board_is_not_polling() -> None:
    script = Script().enable()
    script.reader.handle_timer(script.now + 5)
    with pytest.raises(LocalMdbError, match="link down"):
        script.reader.begin_session(2500, script.now)


def test_begin_session_goes_out_at_the_next_poll_until_acked() -> None:
    script = Script().enable()
    script.reader.begin_session(2500, script.now)
    assert script.reader.state == "session_idle"
    assert script.events() == [SessionStarted(2500)]
    assert script.send(mdb.Poll()) == ["CD 03 09 C4 D0*"]
    assert script.send(mdb.Poll()) == ["CD 03 09 C4 D0*"]  # the ACK was lost
    script.send(mdb.Ack())
    assert script.send(mdb.Poll()) == [ACK]


def test_a_vend_within_credit_is_approved_at_once() -> None:
    script = Script().enable().session(2500)
    assert script.send(COLA) == ["CD 05 07 D0 DC*"]
    assert script.reader.state == "vend"
    assert script.events() == [VendRequested(2000, 101), ApprovalSent(2000, 101, 2000)]


def test_a_vend_over_credit_is_denied() -> None:
    script = Script().enable().session(2500)
    assert script.send(mdb.VendRequest(price=2501, item=7)) == ["CD 06 06*"]
    assert script.reader.state == "session_idle"
    assert script.events()[-1] == DenialSent(2501, 7, "exceeds_credit")


def test_multivend_never_approves_past_the_credit() -> None:
    script = Script().enable().session(2500)
    script.vend(mdb.VendRequest(1500, 1))
    script.send(mdb.VendSuccess(1))
    assert script.reader.credit_left == 1000
    assert script.vend(mdb.VendRequest(1500, 1)) == ["CD 06 06*"]
    assert script.vend(mdb.VendRequest(1000, 2)) == ["CD 05 03 E8 F0*"]
    assert script.reader.credit_left == 1000  # spent only when the VMC says it dispensed
    script.send(mdb.VendSuccess(2))
    assert script.reader.credit_left == 0


def test_a_failed_vend_gives_the_credit_back() -> None:
    script = Script().enable().session(2500)
    script.vend()
    assert script.send(mdb.VendFailure()) == [ACK]
    assert script.events()[-1] == VendFailed(101, 2000, 2000)
    assert script.reader.credit_left == 2500


def test_success_reports_the_boards_item_and_the_approved_price() -> None:
    script = Script().enable().session(2500)
    script.vend()
    script.send(mdb.VendSuccess(item=555))
    assert script.events()[-1] == VendSucceeded(item=555, price=2000, vmc_price=2000)


def test_vend_cancel_after_approval_releases_the_vend() -> None:
    script = Script().enable().session(2500)
    script.vend()
    assert script.send(mdb.VendCancel()) == ["CD 06 06*"]
    assert script.events()[-1] == VendFailed(101, 2000, 2000)
    assert script.reader.state == "session_idle"


def test_session_complete_ends_the_session() -> None:
    script = Script().enable().session()
    assert script.send(mdb.SessionComplete()) == ["CD 07 07*"]
    assert script.reader.state == "enabled"
    assert script.events() == [SessionEnded(EndReason.COMPLETED)]


def test_disable_during_a_session_waits_for_its_end() -> None:
    script = Script().enable().session()
    script.send(mdb.ReaderDisable())
    assert script.reader.state == "session_idle"
    script.send(mdb.SessionComplete())
    assert script.reader.state == "disabled"
    assert script.events() == [SessionEnded(EndReason.COMPLETED), ReaderDisabled()]


# --- repetitions (lost ACKs) ---------------------------------------------------------------------


def test_a_repeated_vend_request_gets_the_same_answer_and_no_second_approval() -> None:
    script = Script().enable().session(2500)
    first = script.send(COLA)
    assert script.send(COLA) == first  # our reply was lost: the VMC asks again
    assert script.events() == [VendRequested(2000, 101), ApprovalSent(2000, 101, 2000)]


def test_a_repeated_vend_success_is_counted_once() -> None:
    script = Script().enable().session(2500)
    script.vend()
    assert script.send(mdb.VendSuccess(101)) == [ACK]
    assert script.send(mdb.VendSuccess(101)) == [ACK]
    assert [e for e in script.events() if isinstance(e, VendSucceeded)] == [
        VendSucceeded(101, 2000, 2000)
    ]
    assert script.reader.credit_left == 500


def test_a_repeated_session_complete_after_polls_is_answered_without_effect() -> None:
    script = Script().enable().session()
    script.send(mdb.SessionComplete())
    script.send(mdb.Poll())
    assert script.send(mdb.SessionComplete()) == ["CD 07 07*"]
    assert script.events() == [SessionEnded(EndReason.COMPLETED)]


def test_an_unacked_vend_approved_is_repeated_at_the_next_poll() -> None:
    script = Script().enable().session(2500)
    script.send(COLA)  # VMC got the reply, but its ACK was lost
    assert script.send(mdb.Poll()) == ["CD 05 07 D0 DC*"]
    script.send(mdb.Ack())
    assert script.send(mdb.Poll()) == [ACK]


def test_ret_repeats_the_last_block_byte_for_byte() -> None:
    script = Script().enable()
    (config,) = script.send(mdb.SetupConfig(2))
    assert script.send(mdb.Ret()) == [config]


def test_a_customer_retrying_the_same_selection_later_is_a_new_request() -> None:
    script = Script().enable().session(2500)
    script.vend(mdb.VendRequest(3000, 3))
    script.send(mdb.Poll())
    assert script.send(mdb.VendRequest(3000, 3)) == ["CD 06 06*"]
    assert len([e for e in script.events() if isinstance(e, VendRequested)]) == 2


# --- resets --------------------------------------------------------------------------------------


def test_reset_between_acked_approval_and_success_is_a_success() -> None:
    script = Script().enable().session(2500)
    script.vend()  # approval ACKed by the VMC
    assert script.send(mdb.Reset()) == [ACK]
    assert script.events()[-3:] == [
        BoardReset(),
        VendSucceeded(101, 2000, 2000),
        SessionEnded(EndReason.BOARD_RESET),
    ]
    assert script.reader.state == "inactive"
    assert script.send(mdb.Poll()) == ["CD 00 00*"]


def test_reset_after_an_approval_the_vmc_never_acknowledged_is_no_success() -> None:
    script = Script().enable().session(2500)
    script.send(COLA)  # VEND APPROVED sent, no ACK, nothing else from the VMC
    script.send(mdb.Reset())
    events = script.events()
    assert VendFailed(101, 2000, 2000) in events
    assert not any(isinstance(e, VendSucceeded) for e in events)


def test_repeated_reset_is_one_board_reset() -> None:
    script = Script().enable()
    script.send(mdb.Reset())
    script.send(mdb.Reset())
    assert script.events() == [BoardReset()]


# --- out of sequence -----------------------------------------------------------------------------


def test_a_command_out_of_sequence_parks_the_reader_until_reset() -> None:
    script = Script().enable()
    assert script.send(COLA) == [ACK]  # no session: ACK it, complain at the next POLL
    assert script.reader.state == "error"
    assert script.send(mdb.Poll()) == ["CD 0B 0B*"]
    script.send(mdb.Ack())
    script.send(mdb.ReaderEnable())
    assert script.reader.state == "error"
    with pytest.raises(LocalMdbError):
        script.reader.begin_session(2500, script.now)
    script.send(mdb.Reset())
    assert script.reader.state == "inactive"


def test_unsupported_revalue_is_denied_without_moving() -> None:
    script = Script().enable()
    assert script.send(mdb.RevalueRequest(100)) == ["CD 0E 0E*"]
    assert script.reader.state == "enabled"


# --- time ----------------------------------------------------------------------------------------


def test_selection_timeout_asks_the_vmc_to_end_the_session() -> None:
    script = Script().enable()
    deadline = script.now + 10.0  # selection timeout 10 s, from begin_session
    script.session(2500)
    while script.now + 1.0 < deadline:
        assert script.send(mdb.Poll(), after=1.0) == [ACK]
        script.reader.handle_timer(script.now)
    script.now = deadline
    script.reader.handle_timer(script.now)
    assert script.send(mdb.Poll(), after=0) == ["CD 04 04*"]
    script.send(mdb.Ack())
    script.send(mdb.SessionComplete())
    assert script.events()[-1] == SessionEnded(EndReason.TIMEOUT)


def test_set_selection_timeout_moves_the_deadline() -> None:
    script = Script(CashlessConfig(selection_timeout_s=10.0, link_lost_after_s=100.0))
    started = script.enable().now
    script.session(2500)
    assert script.reader.next_deadline() == pytest.approx(started + 10.0)
    script.reader.set_selection_timeout(3.0)
    assert script.reader.next_deadline() == pytest.approx(started + 3.0)
    with pytest.raises(LocalMdbError):
        script.reader.set_selection_timeout(0)


def test_a_vend_restarts_the_selection_clock_and_stops_it_meanwhile() -> None:
    script = Script().enable().session(2500)
    script.send(COLA, after=9.0)
    assert script.reader.next_deadline() == pytest.approx(script.now + 2.0)  # link only
    script.send(mdb.VendSuccess(101))
    assert script.reader.next_deadline() == pytest.approx(script.now + 2.0)
    script.reader.set_selection_timeout(1.0)
    assert script.reader.next_deadline() == pytest.approx(script.now + 1.0)


def test_cancel_before_begin_session_left_takes_it_back() -> None:
    script = Script().enable()
    script.reader.begin_session(2500, script.now)
    script.reader.cancel_session()
    assert script.send(mdb.Poll()) == [ACK]
    assert script.reader.state == "enabled"
    assert script.events() == [SessionStarted(2500), SessionEnded(EndReason.CANCELLED)]


def test_cancel_during_a_vend_waits_for_its_outcome_and_denies_new_ones() -> None:
    script = Script().enable().session(2500)
    script.vend(mdb.VendRequest(500, 1))
    script.reader.cancel_session()
    assert script.send(mdb.Poll()) == [ACK]  # the vend is uninterruptible
    script.send(mdb.VendSuccess(1))
    assert script.send(mdb.Poll()) == ["CD 04 04*"]
    assert script.send(mdb.VendRequest(500, 1)) == ["CD 06 06*"]
    assert script.events()[-1] == DenialSent(500, 1, "session_ending")


def test_cancel_without_a_session_does_nothing() -> None:
    script = Script().enable()
    script.reader.cancel_session()
    assert script.send(mdb.Poll()) == [ACK]
    assert script.events() == []


# --- the link ------------------------------------------------------------------------------------


def test_silence_ends_an_idle_session_and_the_reader_comes_back_inactive() -> None:
    script = Script().enable().session(2500)
    lost_at = script.reader.next_deadline()
    assert lost_at is not None
    assert lost_at == pytest.approx(script.now + 2.0)
    script.reader.handle_timer(lost_at)
    assert script.reader.link_up is False
    assert script.events() == [LinkLost(), SessionEnded(EndReason.LINK_LOST)]
    assert script.send(mdb.Poll(), after=5) == ["CD 00 00*"]  # initialise me again
    assert script.events() == [LinkRestored()]


def test_silence_keeps_an_approved_vend_until_the_board_says_how_it_went() -> None:
    script = Script().enable().session(2500)
    script.vend()
    script.reader.handle_timer(script.now + 2.0)
    assert script.events()[-1] == LinkLost()
    assert script.reader.state == "vend"
    script.send(mdb.VendSuccess(101), after=3)
    assert script.events() == [LinkRestored(), VendSucceeded(101, 2000, 2000)]


def test_bad_blocks_get_silence_and_do_not_count_as_the_board_talking() -> None:
    script = Script()
    bad = mdb.Block(mdb.Direction.VMC, (mdb.Word(0x12, True), mdb.Word(0x13)))
    other = mdb.command_block(mdb.Poll(), device=mdb.CASHLESS_2)
    for block in (bad, other):
        script.reader.receive_block(block, 1.0)
    assert script.reader.blocks_to_send() == []
    assert script.reader.rejected_blocks == 2
    assert script.reader.link_up is False


# --- bytes ---------------------------------------------------------------------------------------

POLL_FRAME = mdb.encode_frame(mdb.command_block(mdb.Poll()))
JUST_RESET_FRAME = mdb.encode_frame(mdb.response_block(mdb.JustReset()))


@pytest.mark.parametrize(
    "chunks",
    [
        [POLL_FRAME],
        [POLL_FRAME[:5], POLL_FRAME[5:]],
        [bytes([b]) for b in POLL_FRAME],
        [b"\x00\xff garbage \x7d", POLL_FRAME, b"\x13\x37"],
    ],
    ids=["whole", "split", "byte-by-byte", "in-noise"],
)
def test_frames_are_answered_however_they_arrive(chunks: list[bytes]) -> None:
    reader = Reader()
    replies = b""
    for chunk in chunks:
        reader.receive_data(chunk, 1.0)
        replies += reader.data_to_send(1.0)
    assert replies == JUST_RESET_FRAME


def test_a_frame_with_a_lost_byte_gets_no_answer_and_the_next_one_does() -> None:
    reader = Reader()
    reader.receive_data(POLL_FRAME[:3] + POLL_FRAME[4:], 1.0)
    assert reader.data_to_send(1.0) == b""
    reader.receive_data(POLL_FRAME, 1.1)
    assert reader.data_to_send(1.1) == JUST_RESET_FRAME
    assert reader.link_stats.dropped_frames == 1


def test_our_own_echo_is_ignored() -> None:
    reader = Reader()
    reader.receive_data(JUST_RESET_FRAME, 1.0)
    assert reader.data_to_send(1.0) == b""
    assert reader.link_up is False


# --- amounts -------------------------------------------------------------------------------------


def test_funds_are_minor_units_and_events_are_wire_units() -> None:
    config = CashlessConfig(scale_factor=5, selection_timeout_s=10.0)  # 1 wire unit = 5 øre
    script = Script(config).enable()
    script.reader.begin_session(2502, script.now)  # rounds down: never offer more
    assert script.send(mdb.Poll()) == ["CD 03 01 F4 F8*"]  # 500 units
    script.send(mdb.Ack())
    assert script.send(mdb.VendRequest(400, 1)) == ["CD 05 01 90 96*"]
    assert script.events()[-1] == ApprovalSent(400, 1, 400)
    assert config.to_minor(400) == 2000


def test_credit_above_the_level_1_field_is_kept_but_shown_as_fffe() -> None:
    script = Script().enable()
    script.reader.begin_session(70_000, script.now)
    assert script.send(mdb.Poll()) == ["CD 03 FF FE 00*"]
    assert script.reader.credit_left == 70_000


# --- price authority: the planogram sets the price, not the VMC ----------------------------------

PLANOGRAM = {101: 1500, 7: 3000}  # item -> minor units


def priced(
    mode: PriceMode = "planogram",
    planogram: dict[int, int] | None = PLANOGRAM,
    config: CashlessConfig | None = None,
) -> Script:
    script = Script(config).enable()
    script.reader.set_pricing(mode, planogram)
    return script


def approved_amount(reply: list[str]) -> int:
    """The amount a VEND APPROVED reply carries (what the VMC will deduct)."""
    (line,) = reply
    block = mdb.parse_capture_line(line)
    assert block is not None
    (message,) = mdb.decode_responses(block.words)
    assert isinstance(message, mdb.VendApproved), message
    return message.amount


def test_the_planogram_price_is_approved_whatever_the_vmc_asks() -> None:
    script = priced().session(2500)
    assert script.send(COLA) == ["CD 05 05 DC E6*"]  # VEND APPROVED 1500, not the 2000 asked
    assert script.events() == [
        VendRequested(2000, 101),
        ApprovalSent(1500, 101, vmc_price=2000),
    ]
    script.send(mdb.Ack())
    script.send(mdb.VendSuccess(101))
    assert script.events()[-1] == VendSucceeded(101, 1500, vmc_price=2000)
    assert script.reader.credit_left == 1000  # the session spent the approved amount


def test_a_planogram_price_above_the_credit_is_denied_though_the_vmc_asks_less() -> None:
    script = priced().session(2500)
    assert script.send(mdb.VendRequest(price=2000, item=7)) == ["CD 06 06*"]
    assert script.events()[-1] == DenialSent(2000, 7, "exceeds_credit")


def test_an_item_not_in_the_planogram_is_denied() -> None:
    script = priced().session(2500)
    assert script.send(mdb.VendRequest(price=1000, item=55)) == ["CD 06 06*"]
    assert script.events()[-1] == DenialSent(1000, 55, "not_in_planogram")
    assert script.reader.state == "session_idle"
    assert script.reader.credit_left == 2500


def test_before_any_planogram_arrived_every_vend_is_denied() -> None:
    script = priced(planogram=None).session(2500)
    assert script.send(COLA) == ["CD 06 06*"]
    assert script.events()[-1] == DenialSent(2000, 101, "no_planogram")


def test_vmc_prices_approve_what_the_vmc_asks_listed_or_not() -> None:
    script = priced(mode="vmc").session(5000)
    assert approved_amount(script.vend(COLA)) == 2000
    script.send(mdb.VendSuccess(101))
    assert approved_amount(script.vend(mdb.VendRequest(price=1000, item=55))) == 1000
    script.send(mdb.VendSuccess(55))
    events = [e for e in script.events() if isinstance(e, VendSucceeded)]
    assert events == [VendSucceeded(101, 2000, vmc_price=2000), VendSucceeded(55, 1000, 1000)]
    assert script.reader.credit_left == 2000


def test_a_planogram_price_the_wire_cannot_carry_is_denied() -> None:
    config = CashlessConfig(scale_factor=5, selection_timeout_s=10.0)  # 1 wire unit = 5 øre
    script = priced(planogram={1: 2502, 2: 2500, 3: 70_000 * 5}, config=config)
    script.session(400_000)
    assert script.send(mdb.VendRequest(price=500, item=1)) == ["CD 06 06*"]
    assert script.events()[-1] == DenialSent(500, 1, "price_unrepresentable")
    assert script.send(mdb.VendRequest(price=100, item=3)) == ["CD 06 06*"]  # > 16 bits
    assert script.events()[-1] == DenialSent(100, 3, "price_unrepresentable")
    assert approved_amount(script.send(mdb.VendRequest(price=100, item=2))) == 500  # 25.00


def test_new_prices_apply_to_the_next_request_never_to_an_approved_vend() -> None:
    script = priced().session(5000)
    script.vend(COLA)
    script.reader.set_pricing("planogram", {101: 1800})
    script.send(mdb.VendSuccess(101))
    assert script.reader.credit_left == 3500  # the 1500 approved, not the 1800 now listed
    assert approved_amount(script.vend(COLA)) == 1800


requests = st.lists(
    st.tuples(st.integers(0, 0xFFFE), st.sampled_from([101, 7, 55, 0xFFFF]), st.booleans()),
    max_size=6,
)


@given(
    planogram=st.dictionaries(st.sampled_from([101, 7, 9]), st.integers(1, 6000), max_size=3),
    funds=st.integers(1, 9000),
    mode=st.sampled_from(["planogram", "vmc"]),
    selections=requests,
)
def test_the_reader_never_approves_more_than_the_planogram_price_or_the_credit(
    planogram: dict[int, int], funds: int, mode: PriceMode, selections: list[tuple[int, int, bool]]
) -> None:
    script = priced(mode, planogram).session(funds)
    for asked, item, dropped in selections:
        credit = script.reader.credit_left
        assert credit is not None
        reply = script.send(mdb.VendRequest(price=asked, item=item))
        if reply == ["CD 06 06*"]:
            continue
        amount = approved_amount(reply)
        assert amount <= credit
        assert amount == (planogram[item] if mode == "planogram" else asked)
        script.send(mdb.Ack())
        script.send(mdb.VendSuccess(item) if dropped else mdb.VendFailure())
    spent = [e.price for e in script.events() if isinstance(e, VendSucceeded)]
    assert sum(spent) == funds - (script.reader.credit_left or 0) <= funds

"""Golden vectors and error cases for the MDB cashless codec (no ports, no clock)."""

from __future__ import annotations

import re

import pytest

from vendgate.protocol.mdb import (
    CASHLESS_2,
    Ack,
    Answer,
    BeginSession,
    Block,
    Cancelled,
    CashSale,
    CdMessage,
    CommandOutOfSequence,
    Dialect,
    Direction,
    DisplayRequest,
    EndSession,
    ExpansionEnableOptions,
    ExpansionRequestId,
    JustReset,
    Level3Options,
    LocalMdbError,
    Malfunction,
    MalfunctionError,
    Nak,
    PeripheralId,
    Poll,
    ReaderCancel,
    ReaderConfigData,
    ReaderDisable,
    ReaderEnable,
    RemoteMdbError,
    Reset,
    Ret,
    SessionCancelRequest,
    SessionComplete,
    SetupConfig,
    SetupPrices,
    VendApproved,
    VendCancel,
    VendDenied,
    VendFailure,
    VendRequest,
    VendSuccess,
    VmcMessage,
    Word,
    decode_block,
    decode_command,
    decode_responses,
    encode_command,
    encode_response,
    format_capture_line,
    parse_capture_line,
)


def words(line: str) -> list[Word]:
    """Capture notation to words: ``"13* 00 23"`` -> [Word(0x13, True), Word(0), Word(0x23)]."""
    block = parse_capture_line(f"VMC {line}")
    assert block is not None
    return list(block.words)


# (message, exact block in capture notation) from the VMC; sources in comments.
VMC_VECTORS = [
    (Reset(), "10* 10"),  # Zzzzipper trace: "10"
    (Poll(), "12* 12"),
    (SetupConfig(2, 0, 0, 0), "11* 00 02 00 00 00 13"),  # Zzzzipper: "110002000000"
    (SetupConfig(3, 0, 0, 0), "11* 00 03 00 00 00 14"),  # Qibixx sniff: "11,0003000000"
    (SetupPrices(0xFFFF, 0x0000), "11* 01 FF FF 00 00 10"),  # Zzzzipper / Qibixx: max FFFF
    (
        SetupPrices(70000, 100, currency=0x1578),
        "11* 01 00 01 11 70 00 00 00 64 15 78 85",
    ),
    (VendRequest(price=10, item=6), "13* 00 00 0A 00 06 23"),  # Zzzzipper Pax D200 trace
    (VendRequest(price=0x12345, item=1, expanded=True), "13* 00 00 01 23 45 00 01 7D"),
    (VendCancel(), "13* 01 14"),
    (VendSuccess(6), "13* 02 00 06 1B"),
    (VendFailure(), "13* 03 16"),
    (SessionComplete(), "13* 04 17"),
    (CashSale(price=150, item=0x8003), "13* 05 00 96 80 03 31"),
    (ReaderDisable(), "14* 00 14"),
    (ReaderEnable(), "14* 01 15"),  # Zzzzipper: "1401"
    (ReaderCancel(), "14* 02 16"),
    (
        ExpansionRequestId("EFR", "0123456789AB", "0123456789AB", 0x0100),
        "17* 00 45 46 52 30 31 32 33 34 35 36 37 38 39 41 42"
        " 30 31 32 33 34 35 36 37 38 39 41 42 01 00 15",  # Zzzzipper request ID
    ),
    (ExpansionEnableOptions(Level3Options.ALWAYS_IDLE), "17* 04 00 00 00 20 3B"),
    (Ack(), "00"),
    (Ret(), "AA"),
    (Nak(), "FF"),
]

# (messages, exact block) from the cashless device.
CD_VECTORS = [
    ([VendApproved(10)], "05 00 0A 0F*"),  # Zzzzipper Pax D200 trace
    ([VendDenied(), Malfunction(0x07), SessionCancelRequest()], "06 0A 07 04 1B*"),  # §7.3.1
    ([ReaderConfigData(3, 0x1756, 1, 2, 30, 0)], "01 03 17 56 01 02 1E 00 92*"),  # Qibixx
    ([ReaderConfigData(1, 0x1643, 1, 1, 20, 0)], "01 01 16 43 01 01 14 00 71*"),  # Zzzzipper
    (
        [PeripheralId("EFR", "0123456789AB", "0123456789AB", 0x0100)],
        "09 45 46 52 30 31 32 33 34 35 36 37 38 39 41 42"
        " 30 31 32 33 34 35 36 37 38 39 41 42 01 00 07*",  # Zzzzipper peripheral ID
    ),
    ([JustReset()], "00 00*"),
    ([Ack()], "00*"),
    ([Nak()], "FF*"),
    ([BeginSession(funds=0x03E8)], "03 03 E8 EE*"),
    ([EndSession()], "07 07*"),
    ([Cancelled()], "08 08*"),
    ([Malfunction.of(MalfunctionError.REFUND_ERROR)], "0A C0 CA*"),
    ([CommandOutOfSequence(state=5)], "0B 05 10*"),
    ([DisplayRequest(30, "HI")], "02 1E 48 49 B1*"),
]


@pytest.mark.parametrize(("message", "line"), VMC_VECTORS, ids=lambda v: str(v)[:30])
def test_command_encodes_to_golden_bytes_and_back(message: VmcMessage, line: str) -> None:
    assert encode_command(message) == words(line)
    assert decode_command(words(line)) == message


@pytest.mark.parametrize(("messages", "line"), CD_VECTORS, ids=lambda v: str(v)[:30])
def test_response_encodes_to_golden_bytes_and_back(messages: list[CdMessage], line: str) -> None:
    assert encode_response(messages) == words(line)
    assert list(decode_responses(words(line))) == messages


def test_vmc_block_has_mode_bit_on_address_only_and_cd_on_last_byte_only() -> None:
    vmc = encode_command(VendRequest(price=10, item=6))
    cd = encode_response(VendApproved(10))
    assert [w.mode for w in vmc] == [True, False, False, False, False, False, False]
    assert [w.mode for w in cd] == [False, False, False, True]


def test_ack_and_just_reset_are_different_blocks() -> None:
    assert decode_responses(words("00*")) == (Ack(),)
    assert decode_responses(words("00 00*")) == (JustReset(),)
    assert encode_response(Ack()) == [Word(0x00, True)]
    assert encode_response(JustReset()) == [Word(0x00), Word(0x00, True)]


def test_cashless_2_uses_address_base_60() -> None:
    block = encode_command(VendRequest(price=10, item=6), device=CASHLESS_2)
    assert block[0] == Word(0x63, True)
    assert block[-1] == Word(0x73)  # 0x23 + 0x50
    assert decode_command(block, device=CASHLESS_2) == VendRequest(price=10, item=6)
    decoded = decode_block(Block(Direction.VMC, tuple(block)))
    assert decoded.device == CASHLESS_2


def test_command_for_the_other_cashless_device_is_refused() -> None:
    block = encode_command(Poll(), device=CASHLESS_2)
    with pytest.raises(RemoteMdbError, match="60H, not for 10H"):
        decode_command(block)


def test_wrong_checksum_is_reported_by_decode_block_and_raised_by_strict_api() -> None:
    bad = words("13* 00 00 0A 00 06 24")
    decoded = decode_block(Block(Direction.VMC, tuple(bad)))
    assert decoded.checksum_ok is False
    assert decoded.messages == (VendRequest(price=10, item=6),)
    with pytest.raises(RemoteMdbError, match=r"checksum mismatch.*24H.*23H") as info:
        decode_command(bad)
    assert info.value.answer is Answer.SILENCE


def test_wrong_checksum_on_reply_raises_and_hints_ret() -> None:
    with pytest.raises(RemoteMdbError, match="checksum") as info:
        decode_responses(words("05 00 0A 10*"))
    assert info.value.answer is Answer.RETRANSMIT


def test_good_checksum_is_reported_true() -> None:
    decoded = decode_block(Block(Direction.CD, tuple(words("06 0A 07 04 1B*"))))
    assert decoded.checksum_ok is True
    assert [m.name for m in decoded.messages] == [
        "VEND_DENIED",
        "MALFUNCTION",
        "SESSION_CANCEL_REQUEST",
    ]


@pytest.mark.parametrize(
    ("direction", "line", "message"),
    [
        (Direction.CD, "05 00 05*", "VEND_APPROVED (05H) at byte 0 is truncated"),
        (Direction.CD, "42 42*", "unknown response code 42H at byte 0"),
        (Direction.CD, "06 0A 10*", "MALFUNCTION (0AH) at byte 1 is truncated"),
        (Direction.CD, "05 00 0A 0F", "does not end with the mode bit"),
        (Direction.CD, "AA*", "RET (AAH) is sent only by the VMC"),
        (Direction.CD, "42*", "neither ACK nor NAK"),
        (Direction.VMC, "13* 00 00 0A 1D", "VEND_REQUEST is truncated"),
        (Direction.VMC, "13* 09 1C", "unknown VEND subcommand 09H"),
        (Direction.VMC, "13* 13", "VEND command is truncated: no subcommand byte"),
        (Direction.VMC, "16* 16", "unknown cashless command 6"),
        (Direction.VMC, "08* 08", "08H is not a cashless device"),
        (Direction.VMC, "13* 00 00 0A 00 06 77 9A", "unexpected trailing"),
        (Direction.VMC, "12*", "has no checksum byte"),
        (Direction.VMC, "12 12", "starts with data byte 12H"),
        (Direction.VMC, "13* 01* 14", "mode bit on a byte after the address"),
        (Direction.VMC, " ".join(["12*"] + ["00"] * 36), "MDB blocks hold 36"),
    ],
)
def test_unreadable_blocks_raise_remote_error(
    direction: Direction, line: str, message: str
) -> None:
    with pytest.raises(RemoteMdbError, match=re.escape(message)) as info:
        decode_block(Block(direction, tuple(words(line))))
    # The reader stays silent on a bad command; the VMC may ask for a bad reply again.
    expected = Answer.SILENCE if direction is Direction.VMC else Answer.RETRANSMIT
    assert info.value.answer is expected


def test_multi_message_split_follows_the_dialect() -> None:
    # BEGIN SESSION is 3 bytes on level 1 and 17 with 32-bit money: the dialect decides.
    level1 = [BeginSession(funds=100), EndSession()]
    block = encode_response(level1)
    assert [w.byte for w in block] == [0x03, 0x00, 0x64, 0x07, 0x6E]
    assert decode_responses(block, dialect=Dialect(level=1)) == tuple(level1)
    assert decode_responses(block) == tuple(level1)  # unknown level: the only reading that fits
    with pytest.raises(RemoteMdbError, match="BEGIN_SESSION"):
        decode_responses(block, dialect=Dialect(level=3, expanded=True))


def test_level3_forms_round_trip_with_their_dialect() -> None:
    messages = [
        BeginSession(70000, 0x01020304, 1, 0x0A0B, "en", 0x1578, 0x01),
        VendApproved(70000, expanded=True),
        CommandOutOfSequence(state=2),
    ]
    block = encode_response(messages)
    assert decode_responses(block, dialect=Dialect(level=3, expanded=True)) == tuple(messages)


def test_peripheral_id_level3_form_carries_option_bits() -> None:
    options = Level3Options.ALWAYS_IDLE | Level3Options.MONEY_32BIT
    message = PeripheralId("VGT", "000000000042", "edge", 0x0102, options=options)
    block = encode_response(message)
    assert len(block) == 35  # 34 bytes + CHK
    assert [w.byte for w in block[30:34]] == [0, 0, 0, 0x22]
    (decoded,) = decode_responses(block, dialect=Dialect(level=3))
    assert decoded == PeripheralId("VGT", "000000000042", "edge        ", 0x0102, options=0x22)
    assert decoded.as_dict()["software_version"] == "0102"


def test_command_out_of_sequence_level1_is_empty() -> None:
    assert encode_response(CommandOutOfSequence()) == [Word(0x0B), Word(0x0B, True)]
    assert decode_responses(words("0B 0B*"), dialect=Dialect(level=1)) == (CommandOutOfSequence(),)


def test_malfunction_classes() -> None:
    refund = Malfunction.of(MalfunctionError.REFUND_ERROR, detail=3)
    assert refund.error_code == 0xC3
    assert refund.error is MalfunctionError.REFUND_ERROR
    assert refund.as_dict() == {"name": "MALFUNCTION", "code": 0xC3, "error": "REFUND_ERROR"}
    assert Malfunction(0x60).error is None  # class 0110 is unassigned
    with pytest.raises(LocalMdbError, match="4 bits"):
        Malfunction.of(MalfunctionError.TAMPER, detail=16)


def test_as_dict_uses_snake_case_and_scaled_integers() -> None:
    config = ReaderConfigData(1, 0x1578, 1, 2, 30, 0b1001)
    assert config.as_dict() == {
        "name": "READER_CONFIG_DATA",
        "feature_level": 1,
        "currency": "1578",
        "scale_factor": 1,
        "decimal_places": 2,
        "max_response_time": 30,
        "options": 9,
    }
    assert VendRequest(10, 6).as_dict() == {"name": "VEND_REQUEST", "price": 10, "item": 6}
    assert VendRequest(10, 6, expanded=True).as_dict()["expanded"] is True
    assert SetupPrices(500, 0).as_dict() == {
        "name": "SETUP_PRICES",
        "max_price": 500,
        "min_price": 0,
    }
    assert SetupConfig(3, 16, 2, 1).as_dict() == {
        "name": "SETUP_CONFIG",
        "feature_level": 3,
        "display_columns": 16,
        "display_rows": 2,
        "display_info": 1,
    }


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (VendRequest(price=0x10000, item=1), "does not fit 16 bits; use expanded=True"),
        (VendRequest(price=1, item=0x10000), "item = 65536 does not fit 16 bits"),
        (VendRequest(price=-1, item=1), "price = -1 does not fit"),
        (SetupConfig(256), "feature_level = 256"),
        (ExpansionRequestId("VGTX", "1", "2", 0), "longer than its 3 characters"),
        (ExpansionRequestId("VG", "ø", "2", 0), "is not ASCII"),
    ],
)
def test_encoding_illegal_values_raises_local_error(message: VmcMessage, error: str) -> None:
    with pytest.raises(LocalMdbError, match=error) as info:
        encode_command(message)
    assert info.value.answer is Answer.NOT_SENT


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([], "empty reply"),
        ([Ack(), VendDenied()], "ACK is a block of its own"),
        ([Ret()], "RET is sent only by the VMC"),
        ([VendApproved(0x10000)], "does not fit 16 bits"),
        ([BeginSession(5, media_id=1)], "set all of media_id"),
        ([DisplayRequest(1, "x" * 33)], "MDB allows 32"),
        ([VendDenied()] * 36, "an MDB block holds 36"),
    ],
)
def test_encoding_illegal_replies_raises_local_error(messages: list[CdMessage], error: str) -> None:
    with pytest.raises(LocalMdbError, match=error):
        encode_response(messages)


def test_encoding_to_a_non_cashless_address_raises() -> None:
    with pytest.raises(LocalMdbError, match="not a cashless address"):
        encode_command(Poll(), device=0x08)


def test_capture_line_round_trip() -> None:
    line = format_capture_line(Direction.VMC, encode_command(VendRequest(price=10, item=6)))
    assert line == "VMC 13* 00 00 0A 00 06 23"
    block = parse_capture_line(line)
    assert block == Block(Direction.VMC, tuple(words("13* 00 00 0A 00 06 23")))
    assert format_capture_line("CD", [(0x05, False), (0x0F, True)]) == "CD 05 0F*"
    assert parse_capture_line("   # just a comment") is None
    assert parse_capture_line("") is None

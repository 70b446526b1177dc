"""The byte-stream framing that carries MDB blocks (with mode bits) over a pty: examples."""

from __future__ import annotations

import pytest

from vendgate.protocol.mdb import (
    FLAG,
    Block,
    Direction,
    LinkDecoder,
    LocalMdbError,
    MdbLink,
    VendApproved,
    VendRequest,
    Word,
    command_block,
    crc16,
    decode_command,
    encode_frame,
    response_block,
)

VEND_REQUEST = command_block(VendRequest(price=10, item=6))
VEND_APPROVED = response_block(VendApproved(10))
# The documented example (docs/mdb-link.md): VMC 13* 00 00 0A 00 06 23.
VEND_REQUEST_FRAME = bytes.fromhex("7e 01 07 01 13 00 00 0a 00 06 23 41 f1 7e")


def test_crc_is_ccitt_false() -> None:
    assert crc16(b"123456789") == 0x29B1


def test_documented_example_frame() -> None:
    assert encode_frame(VEND_REQUEST) == VEND_REQUEST_FRAME


def test_documented_reply_and_stuffing_examples() -> None:
    assert encode_frame(VEND_APPROVED) == bytes.fromhex("7e 02 04 08 05 00 0a 0f 37 c0 7e")
    block = Block(Direction.CD, (Word(0x7E), Word(0x7D), Word(0xFB, True)))
    assert encode_frame(block) == bytes.fromhex("7e 02 03 04 7d 5e 7d 5d fb 42 0b 7e")


def test_mode_bits_beyond_the_count_are_rejected() -> None:
    body = bytes([0x02, 0x01, 0x03, 0x00])  # count 1 but bit 1 set in the bitmap
    frame = bytes([FLAG]) + body + crc16(body).to_bytes(2, "big") + bytes([FLAG])
    decoder = LinkDecoder()
    decoder.feed(frame)
    assert decoder.next_block() is None
    assert decoder.stats.last_error == "mode bits set beyond the word count"


def test_flag_and_escape_bytes_are_stuffed() -> None:
    block = Block(Direction.CD, (Word(0x7E), Word(0x7D), Word(0xFB, True)))
    frame = encode_frame(block)
    assert frame[0] == FLAG
    assert frame[-1] == FLAG
    assert FLAG not in frame[1:-1]
    assert bytes([0x7D, 0x5E, 0x7D, 0x5D]) in frame
    decoder = LinkDecoder()
    decoder.feed(frame)
    assert decoder.next_block() == block


def test_frames_fed_byte_by_byte_come_out_whole() -> None:
    decoder = LinkDecoder()
    stream = encode_frame(VEND_REQUEST) + encode_frame(VEND_APPROVED)
    received: list[Block] = []
    for byte in stream:
        decoder.feed(bytes([byte]))
        received.extend(decoder)
    assert received == [VEND_REQUEST, VEND_APPROVED]
    assert decoder.stats.frames == 2
    assert decoder.stats.dropped_frames == 0


def test_noise_and_a_corrupted_frame_are_dropped_and_counted() -> None:
    corrupted = bytearray(encode_frame(VEND_APPROVED))
    corrupted[4] ^= 0x01
    decoder = LinkDecoder()
    decoder.feed(b"\x00garbage" + bytes(corrupted) + b"\x11\x22" + encode_frame(VEND_REQUEST))
    assert list(decoder) == [VEND_REQUEST]
    assert decoder.stats.dropped_frames == 2  # the corrupted frame, then the noise between flags
    assert decoder.stats.dropped_bytes == 8 + (len(corrupted) - 2) + 2
    assert decoder.stats.last_error is not None


def test_decoded_block_feeds_the_codec() -> None:
    decoder = LinkDecoder()
    decoder.feed(VEND_REQUEST_FRAME)
    block = decoder.next_block()
    assert block is not None
    assert decode_command(block.words) == VendRequest(price=10, item=6)
    assert decoder.next_block() is None


def test_an_endless_frame_is_abandoned() -> None:
    decoder = LinkDecoder()
    decoder.feed(bytes([FLAG]) + b"\x01" * 500 + encode_frame(VEND_REQUEST))
    assert list(decoder) == [VEND_REQUEST]
    assert decoder.stats.dropped_frames == 1


@pytest.mark.parametrize("count", [0, 37])
def test_frame_size_is_limited_to_an_mdb_block(count: int) -> None:
    with pytest.raises(LocalMdbError, match=r"1\.\.36 words"):
        encode_frame(Block(Direction.VMC, tuple(Word(0) for _ in range(count))))


def test_link_decoder_satisfies_the_link_protocol() -> None:
    link: MdbLink = LinkDecoder()
    link.feed(link.encode(VEND_APPROVED))
    assert link.next_block() == VEND_APPROVED

"""MDB cashless codec and link framing: pure, sans-I/O (no serial, no asyncio).

Layers, bottom up (like pymodbus: messages, framer, transport kept apart):

1. **Messages**: frozen dataclasses, one per command (VMC -> cashless device, "CD";
   ``_commands``) and response (CD -> VMC; ``_responses``), plus the control bytes ``Ack``,
   ``Nak``, ``Ret`` and the bases (``_base``), shared body shapes (``_bodies``) and field
   values (``_enums``). Every message has a stable ``name`` (``"VEND_REQUEST"``) and
   ``as_dict()`` (``{"name": "VEND_REQUEST", "price": 10, "item": 6}``). Money fields are the
   wire's scaled integers; ``expanded=True`` picks the level 3 32-bit form where the block
   length tells the forms apart.
2. **Codec** (``_codec``): a block is a sequence of 9-bit ``Word(byte, mode)``::

       encode_command(VendRequest(price=10, item=6))     # [Word(0x13, True), ..., Word(0x23)]
       encode_response([VendDenied(), Malfunction(0x07), SessionCancelRequest()])
       decode_command(words)                              # strict: Command / Ack / Ret / Nak
       decode_responses(words, dialect=Dialect(level=1))  # strict: tuple of responses
       decode_block(Block(Direction.CD, words))           # lenient: Decoded(..., checksum_ok)

   Checksums are computed on encode and verified on decode: ``decode_block`` reports
   ``checksum_ok`` (for analysers), the strict decoders raise ``RemoteMdbError``. The device
   address defaults to cashless #1 (``CASHLESS_1`` = 0x10); pass ``device=CASHLESS_2`` (0x60)
   for cashless #2. ``Dialect(level, expanded)`` says how to split a multi-message reply whose
   messages have level-dependent lengths; the default (unknown) tries the longest form first.
3. **Link** (``_link``): ``encode_frame(block) -> bytes`` and ``LinkDecoder`` (``feed(bytes)``,
   ``next_block()``, iteration, ``stats``) carry blocks with their mode bits over a pty or
   plain UART, resynchronising after noise; ``MdbLink`` is the protocol a 9-bit UART link would
   implement instead. Contract: ``docs/mdb-link.md``.
4. **Capture text** (``_capture``): ``VMC 13* 00 00 0A 00 06 23`` lines, as read by
   ``vendgate mdb decode``: ``parse_capture_line``, ``format_capture_line``, ``decode_capture``.

Errors (h11 style): ``MdbError`` > ``LocalMdbError`` (we asked for something illegal; nothing was
sent) and ``RemoteMdbError`` (the peer sent something bad). Each carries ``answer``, an
``Answer`` hint: ``SILENCE`` for a bad command (MDB App. A3: do not NAK, let the VMC retry),
``RETRANSMIT`` for a bad reply read by the VMC (send RET), ``NOT_SENT`` for local errors.
"""

from ._base import (
    ANY_DIALECT,
    CONTROLS,
    Ack,
    Command,
    Control,
    Dialect,
    JsonScalar,
    Message,
    Nak,
    Response,
    Ret,
)
from ._capture import CaptureLineError, decode_capture, format_capture_line, parse_capture_line
from ._codec import (
    CASHLESS_1,
    CASHLESS_2,
    MAX_BLOCK_WORDS,
    Block,
    CdMessage,
    CdReply,
    Decoded,
    Direction,
    VmcMessage,
    Word,
    checksum,
    command_block,
    decode_block,
    decode_command,
    decode_responses,
    encode_command,
    encode_response,
    response_block,
    split_responses,
)
from ._commands import (
    COMMANDS,
    MAX_VEND_ITEM,
    CashSale,
    ExpansionDiagnostics,
    ExpansionEnableOptions,
    ExpansionRequestId,
    Poll,
    ReaderCancel,
    ReaderDisable,
    ReaderEnable,
    Reset,
    RevalueLimitRequest,
    RevalueRequest,
    SessionComplete,
    SetupConfig,
    SetupPrices,
    VendCancel,
    VendFailure,
    VendRequest,
    VendSuccess,
)
from ._enums import Level3Options, MalfunctionError, ReaderOptions, ReaderState
from ._errors import Answer, LocalMdbError, MdbError, RemoteMdbError
from ._link import FLAG, LinkDecoder, LinkStats, MdbLink, crc16, decode_frame, encode_frame
from ._responses import (
    RESPONSES,
    BeginSession,
    Cancelled,
    CommandOutOfSequence,
    DiagnosticResponse,
    DisplayRequest,
    EndSession,
    JustReset,
    Malfunction,
    PeripheralId,
    ReaderConfigData,
    RevalueApproved,
    RevalueDenied,
    RevalueLimitAmount,
    SessionCancelRequest,
    TimeDateRequest,
    VendApproved,
    VendDenied,
)

__all__ = [
    "ANY_DIALECT",
    "CASHLESS_1",
    "CASHLESS_2",
    "COMMANDS",
    "CONTROLS",
    "FLAG",
    "MAX_BLOCK_WORDS",
    "MAX_VEND_ITEM",
    "RESPONSES",
    "Ack",
    "Answer",
    "BeginSession",
    "Block",
    "Cancelled",
    "CaptureLineError",
    "CashSale",
    "CdMessage",
    "CdReply",
    "Command",
    "CommandOutOfSequence",
    "Control",
    "Decoded",
    "DiagnosticResponse",
    "Dialect",
    "Direction",
    "DisplayRequest",
    "EndSession",
    "ExpansionDiagnostics",
    "ExpansionEnableOptions",
    "ExpansionRequestId",
    "JsonScalar",
    "JustReset",
    "Level3Options",
    "LinkDecoder",
    "LinkStats",
    "LocalMdbError",
    "Malfunction",
    "MalfunctionError",
    "MdbError",
    "MdbLink",
    "Message",
    "Nak",
    "PeripheralId",
    "Poll",
    "ReaderCancel",
    "ReaderConfigData",
    "ReaderDisable",
    "ReaderEnable",
    "ReaderOptions",
    "ReaderState",
    "RemoteMdbError",
    "Reset",
    "Response",
    "Ret",
    "RevalueApproved",
    "RevalueDenied",
    "RevalueLimitAmount",
    "RevalueLimitRequest",
    "RevalueRequest",
    "SessionCancelRequest",
    "SessionComplete",
    "SetupConfig",
    "SetupPrices",
    "TimeDateRequest",
    "VendApproved",
    "VendCancel",
    "VendDenied",
    "VendFailure",
    "VendRequest",
    "VendSuccess",
    "VmcMessage",
    "Word",
    "checksum",
    "command_block",
    "crc16",
    "decode_block",
    "decode_capture",
    "decode_command",
    "decode_frame",
    "decode_responses",
    "encode_command",
    "encode_frame",
    "encode_response",
    "format_capture_line",
    "parse_capture_line",
    "response_block",
    "split_responses",
]

"""The error tree: who broke the protocol, and how to answer it.

``MdbError`` is the root. ``LocalMdbError`` means *we* asked for something MDB cannot express
(nothing was sent: fix the caller). ``RemoteMdbError`` means the peer sent bytes we cannot accept.
Both carry ``answer``, a hint for the layer above; MDB's own advice (App. A3) for a bad block is
silence, never NAK, so that is the usual hint.
"""

from __future__ import annotations

import enum

__all__ = ["Answer", "LocalMdbError", "MdbError", "RemoteMdbError"]


class Answer(enum.Enum):
    """How to answer the block that caused the error."""

    SILENCE = "silence"
    """Say nothing: the VMC repeats the command or times out (MDB App. A3 advises against NAK)."""

    RETRANSMIT = "retransmit"
    """VMC side: a reply arrived damaged; send RET and the peripheral repeats it (§2.2)."""

    RESET = "reset"
    """VMC side: the peripheral is confused; send RESET and initialise it again."""

    NOT_SENT = "not_sent"
    """Nothing went on the wire; the caller must change the request."""


class MdbError(Exception):
    """Root of every error raised by ``vendgate.protocol.mdb``."""

    def __init__(self, message: str, *, answer: Answer) -> None:
        super().__init__(message)
        self.message = message
        self.answer = answer


class LocalMdbError(MdbError):
    """We asked for something illegal, e.g. a 17-bit price in a 16-bit field."""

    def __init__(self, message: str, *, answer: Answer = Answer.NOT_SENT) -> None:
        super().__init__(message, answer=answer)


class RemoteMdbError(MdbError):
    """The peer sent something we cannot accept: bad checksum, unknown or truncated block."""

    def __init__(self, message: str, *, answer: Answer = Answer.SILENCE) -> None:
        super().__init__(message, answer=answer)

"""The reader's legal moves, as data (MDB §7.2-7.3, research/vending.md §1.5).

``TRANSITIONS[(state, move)]`` is the state after ``move``; a missing entry is an illegal move and
``transition`` raises ``LocalMdbError``. The reader turns that into COMMAND OUT OF SEQUENCE and
the ``ERROR`` state, left only by RESET. Moves are the VMC's commands plus the reader's own
decisions (``BEGIN_SESSION``, ``DENY``, ``WITHDRAW``); POLL, ACK, RET and NAK move nothing and
are not listed.

Tolerated repeats are listed on purpose: real VMCs resend READER ENABLE around sessions, SETUP
twice, and SESSION COMPLETE when END SESSION was lost; answering them changes nothing.
"""

from __future__ import annotations

import enum

from vendgate.protocol.mdb import LocalMdbError


class State(enum.Enum):
    INACTIVE = "inactive"
    DISABLED = "disabled"
    ENABLED = "enabled"
    SESSION_IDLE = "session_idle"
    VEND = "vend"
    ERROR = "error"


class Move(enum.Enum):
    # from the VMC
    RESET = "RESET"
    SETUP_CONFIG = "SETUP_CONFIG"
    SETUP_PRICES = "SETUP_PRICES"
    EXPANSION_REQUEST_ID = "EXPANSION_REQUEST_ID"
    EXPANSION_ENABLE_OPTIONS = "EXPANSION_ENABLE_OPTIONS"
    READER_ENABLE = "READER_ENABLE"
    READER_DISABLE = "READER_DISABLE"
    READER_CANCEL = "READER_CANCEL"
    VEND_REQUEST = "VEND_REQUEST"
    VEND_CANCEL = "VEND_CANCEL"
    VEND_SUCCESS = "VEND_SUCCESS"
    VEND_FAILURE = "VEND_FAILURE"
    SESSION_COMPLETE = "SESSION_COMPLETE"
    CASH_SALE = "CASH_SALE"
    # the reader's own
    BEGIN_SESSION = "BEGIN_SESSION"
    DENY = "DENY"
    WITHDRAW = "WITHDRAW"
    """Drop a session whose BEGIN SESSION never left the reader."""


INA, DIS, ENA, IDLE, VEND = (
    State.INACTIVE,
    State.DISABLED,
    State.ENABLED,
    State.SESSION_IDLE,
    State.VEND,
)

_SETUP_MOVES = (
    Move.SETUP_PRICES,
    Move.EXPANSION_REQUEST_ID,
    Move.EXPANSION_ENABLE_OPTIONS,
)

TRANSITIONS: dict[tuple[State, Move], State] = {
    **{(state, Move.RESET): INA for state in State},
    # initialisation (§7.4.1): SETUP config data takes an Inactive reader to Disabled
    (INA, Move.SETUP_CONFIG): DIS,
    (DIS, Move.SETUP_CONFIG): DIS,
    (ENA, Move.SETUP_CONFIG): ENA,
    **{(state, move): state for state in (INA, DIS, ENA) for move in _SETUP_MOVES},
    # enable / disable / cancel (§7.4.12-14); a disable during a session waits for its end
    (DIS, Move.READER_ENABLE): ENA,
    (ENA, Move.READER_ENABLE): ENA,
    (IDLE, Move.READER_ENABLE): IDLE,
    (VEND, Move.READER_ENABLE): VEND,
    (DIS, Move.READER_DISABLE): DIS,
    (ENA, Move.READER_DISABLE): DIS,
    (IDLE, Move.READER_DISABLE): IDLE,
    (VEND, Move.READER_DISABLE): VEND,
    (DIS, Move.READER_CANCEL): DIS,
    (ENA, Move.READER_CANCEL): ENA,
    # sessions (§7.4.4-9): authorization first, one vend at a time
    (ENA, Move.BEGIN_SESSION): IDLE,
    (IDLE, Move.WITHDRAW): ENA,
    (IDLE, Move.VEND_REQUEST): VEND,
    (VEND, Move.DENY): IDLE,
    (VEND, Move.VEND_CANCEL): IDLE,
    (VEND, Move.VEND_SUCCESS): IDLE,
    (VEND, Move.VEND_FAILURE): IDLE,
    (IDLE, Move.SESSION_COMPLETE): ENA,
    # a SESSION COMPLETE whose END SESSION was lost comes again after the session ended
    (ENA, Move.SESSION_COMPLETE): ENA,
    (DIS, Move.SESSION_COMPLETE): DIS,
    # CASH SALE is audit only (we do not ask for it, option b3, but accept it)
    (DIS, Move.CASH_SALE): DIS,
    (ENA, Move.CASH_SALE): ENA,
    (IDLE, Move.CASH_SALE): IDLE,
}


def transition(state: State, move: Move) -> State:
    """The state after ``move``, or ``LocalMdbError`` when the table has no such move."""
    try:
        return TRANSITIONS[(state, move)]
    except KeyError:
        raise LocalMdbError(f"{move.value} is not allowed in state {state.value}") from None

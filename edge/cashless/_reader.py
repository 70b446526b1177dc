"""The cashless reader as a sans-I/O object: bytes and time in, replies and events out.

Feed it what the VMC sent (``receive_data`` framed bytes, or ``receive_block``); it answers each
command at once (``data_to_send`` / ``blocks_to_send``) and queues events (``next_event``).
Time is an argument; ``next_deadline`` says when ``handle_timer`` is due (selection timeout,
link loss). It never reads a clock and owns no port.

The legal moves are the table in ``_states``; who owes the VMC which reply, and repetitions,
are ``_delivery``'s job. A VMC command the table does not allow is ACKed, parks the reader in
``error`` and is answered at the next POLL with COMMAND OUT OF SEQUENCE; only RESET leaves
``error`` (§7.4.4). Prices: ``set_pricing`` says who sets them. In ``planogram`` mode a VEND
REQUEST is approved at the planogram's price for its item (VEND APPROVED carries the amount the
VMC deducts, §7.4.5), whatever the VMC asked, and an item the planogram lacks is denied; in
``vmc`` mode (a bare reader's default) the VMC's price is approved. Money: an approval never
takes the session past its funds; a RESET between
VEND APPROVED and VEND SUCCESS counts as a success (§7.4.7) once the VMC has ACKed the approval;
before that it counts as a failure, because the VMC may never have seen the approval and so
never dispensed.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vendgate.protocol import mdb
from vendgate.protocol.mqtt import EndReason

from ._config import READER_FEATURE_LEVEL, CashlessConfig
from ._delivery import Delivery
from ._events import (
    NEED_DATA,
    ApprovalSent,
    BoardReset,
    DenialSent,
    DenyReason,
    LinkLost,
    LinkRestored,
    NeedData,
    PriceMode,
    ReaderDisabled,
    ReaderEnabled,
    ReaderEvent,
    SessionEnded,
    SessionStarted,
    VendFailed,
    VendRequested,
    VendSucceeded,
)
from ._states import Move, State, transition

log = logging.getLogger(__name__)

MAX_FUNDS_SHOWN = 0xFFFE
"""BEGIN SESSION's largest real value (FFFF means "unknown"); more credit is kept, not shown."""
MAX_APPROVED = {False: 0xFFFE, True: 0xFFFFFFFF}
"""VEND APPROVED's largest amount, 16-bit (FFFF means an electronic token) or 32-bit (§7.4.5)."""

MOVES: dict[type[mdb.Command], Move] = {
    mdb.Reset: Move.RESET,
    mdb.SetupConfig: Move.SETUP_CONFIG,
    mdb.SetupPrices: Move.SETUP_PRICES,
    mdb.ExpansionRequestId: Move.EXPANSION_REQUEST_ID,
    mdb.ExpansionEnableOptions: Move.EXPANSION_ENABLE_OPTIONS,
    mdb.ReaderEnable: Move.READER_ENABLE,
    mdb.ReaderDisable: Move.READER_DISABLE,
    mdb.ReaderCancel: Move.READER_CANCEL,
    mdb.VendRequest: Move.VEND_REQUEST,
    mdb.VendCancel: Move.VEND_CANCEL,
    mdb.VendSuccess: Move.VEND_SUCCESS,
    mdb.VendFailure: Move.VEND_FAILURE,
    mdb.SessionComplete: Move.SESSION_COMPLETE,
    mdb.CashSale: Move.CASH_SALE,
}
# Optional features a level 1 reader does not offer: refuse politely, change nothing.
UNSUPPORTED_REPLIES: dict[type[mdb.Command], mdb.CdMessage] = {
    mdb.RevalueRequest: mdb.RevalueDenied(),
    mdb.RevalueLimitRequest: mdb.RevalueDenied(),
    mdb.ExpansionDiagnostics: mdb.Ack(),
}


@dataclass
class _Vend:
    price: int
    """The amount our VEND APPROVED carried: what the session spends if the item drops."""
    item: int
    vmc_price: int
    """What the VMC asked in its VEND REQUEST."""
    confirmed: bool = False
    """The VMC ACKed a block carrying our VEND APPROVED."""


@dataclass
class _Session:
    funds: int
    idle_since: float
    spent: int = 0
    vend: _Vend | None = None
    """The approved vend whose VEND SUCCESS/FAILURE has not come yet."""
    announced: bool = False
    """BEGIN SESSION has left the reader (in a POLL reply) at least once."""
    ending: EndReason | None = None
    """We asked the VMC to end the session (timeout, cancelled) and wait for SESSION COMPLETE."""

    @property
    def credit_left(self) -> int:
        return self.funds - self.spent


class Reader:
    """MDB cashless device #1, level 1, authorization first. See the module docstring."""

    def __init__(self, config: CashlessConfig | None = None) -> None:
        self.config = config if config is not None else CashlessConfig()
        self.selection_timeout_s = self.config.selection_timeout_s
        self.link = mdb.LinkDecoder()
        self.rejected_blocks = 0
        self._state = State.INACTIVE
        self._session: _Session | None = None
        self._disable_pending = False
        self._link_up = False
        self._last_heard = 0.0
        self._price_mode: PriceMode = "vmc"
        self._planogram: dict[int, int] | None = None  # item -> minor units
        self._events: deque[ReaderEvent] = deque()
        self._delivery = Delivery()
        # A reader that powers up answers its first POLL with JUST RESET (§7.4.4).
        self._delivery.queue(mdb.JustReset())
        self._handlers: dict[type[mdb.Command], Callable[[Any, State, float], mdb.CdReply]] = {
            mdb.Reset: self._on_reset,
            mdb.SetupConfig: self._on_setup_config,
            mdb.SetupPrices: self._just_ack,
            mdb.ExpansionRequestId: self._on_request_id,
            mdb.ExpansionEnableOptions: self._just_ack,
            mdb.ReaderEnable: self._on_reader_enable,
            mdb.ReaderDisable: self._on_reader_disable,
            mdb.ReaderCancel: self._on_reader_cancel,
            mdb.VendRequest: self._on_vend_request,
            mdb.VendCancel: self._on_vend_cancel,
            mdb.VendSuccess: self._on_vend_success,
            mdb.VendFailure: self._on_vend_failure,
            mdb.SessionComplete: self._on_session_complete,
            mdb.CashSale: self._just_ack,
        }

    # --- what the agent sees -------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state.value

    @property
    def link_up(self) -> bool:
        return self._link_up

    @property
    def can_begin_session(self) -> bool:
        return self._state is State.ENABLED and self._link_up

    @property
    def credit_left(self) -> int | None:
        """Wire units left in the open session, None without one."""
        return self._session.credit_left if self._session is not None else None

    @property
    def link_stats(self) -> mdb.LinkStats:
        return self.link.stats

    def next_event(self) -> ReaderEvent | NeedData:
        return self._events.popleft() if self._events else NEED_DATA

    # --- bytes in, bytes out -------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes read from the port, any split; complete frames are answered at once."""
        self.link.feed(data)
        for block in self.link:
            self.receive_block(block, now)

    def receive_block(self, block: mdb.Block, now: float) -> None:
        """One block as the VMC sent it (for in-memory pairs that skip the framing)."""
        if block.direction is not mdb.Direction.VMC:
            return  # our own echo on a badly configured line
        try:
            message = mdb.decode_command(block.words, device=mdb.CASHLESS_1)
        except mdb.RemoteMdbError as exc:
            # MDB App. A3: never NAK, stay silent and let the VMC repeat.
            self.rejected_blocks += 1
            log.debug("ignoring a bad VMC block: %s", exc.message)
            return
        self._heard(now)
        if isinstance(message, mdb.Ack):
            self._delivery.acknowledged()
            self._approval_read()
        elif isinstance(message, mdb.Ret):
            self._delivery.retransmit()
        elif isinstance(message, mdb.Nak):
            pass  # keep what is unacknowledged for the next POLL
        elif isinstance(message, mdb.Poll):
            self._on_poll()
        else:
            self._on_command(message, now)

    def blocks_to_send(self) -> list[mdb.Block]:
        """The reply blocks owed to the VMC, oldest first (and forget them)."""
        return self._delivery.take_blocks()

    def data_to_send(self, now: float) -> bytes:
        """The framed bytes to write now (``docs/mdb-link.md``)."""
        return b"".join(mdb.encode_frame(block) for block in self.blocks_to_send())

    # --- time ----------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadlines = []
        if self._link_up:
            deadlines.append(self._last_heard + self.config.link_lost_after_s)
        if (selection := self._selection_deadline()) is not None:
            deadlines.append(selection)
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        if self._link_up and now >= self._last_heard + self.config.link_lost_after_s:
            self._lose_link()
        selection = self._selection_deadline()
        if selection is not None and now >= selection:
            self._request_end(EndReason.TIMEOUT)

    def set_selection_timeout(self, seconds: float) -> None:
        if seconds <= 0:
            raise mdb.LocalMdbError(f"selection timeout must be positive, not {seconds}")
        self.selection_timeout_s = seconds

    def set_pricing(self, mode: PriceMode, planogram: Mapping[int, int] | None) -> None:
        """Who prices the next VEND REQUEST: ``"planogram"`` (item -> minor units; None means
        none has arrived yet, and every vend is denied) or ``"vmc"`` (its own price). A vend
        already approved keeps its amount."""
        self._price_mode = mode
        self._planogram = None if planogram is None else dict(planogram)

    def _selection_deadline(self) -> float | None:
        session = self._session
        if session is None or self._state is not State.SESSION_IDLE or session.ending:
            return None
        return session.idle_since + self.selection_timeout_s

    # --- the agent's calls ---------------------------------------------------------------------

    def begin_session(self, funds: int, now: float) -> None:
        """Offer ``funds`` (minor units) to the customer: BEGIN SESSION at the next POLL.

        Raises ``mdb.LocalMdbError`` and changes nothing unless the reader is enabled, idle and
        hears the VMC: the agent races the VMC, so a refused call must leave a working reader.
        """
        if not self.can_begin_session:
            raise mdb.LocalMdbError(self._why_no_session())
        scaled = self.config.to_scaled(funds)
        if scaled <= 0:
            raise mdb.LocalMdbError(f"funds {funds} are worth no wire unit; nothing to offer")
        self._state = transition(self._state, Move.BEGIN_SESSION)
        self._session = _Session(funds=scaled, idle_since=now)
        self._delivery.queue(mdb.BeginSession(min(scaled, MAX_FUNDS_SHOWN)))
        self._emit(SessionStarted(scaled))

    def cancel_session(self) -> None:
        """End the session (SESSION CANCEL REQUEST); after the current vend if one is under way."""
        self._request_end(EndReason.CANCELLED)

    def _why_no_session(self) -> str:
        if self._state is not State.ENABLED:
            return f"cannot begin a session: the reader is {self._state.value}, not enabled"
        return "cannot begin a session: the vend board is not polling (link down)"

    def _request_end(self, reason: EndReason) -> None:
        session = self._session
        if session is None or session.ending is not None:
            return
        if not session.announced and self._state is State.SESSION_IDLE:
            # The VMC never heard of it: take BEGIN SESSION back instead of asking to cancel.
            self._delivery.withdraw(mdb.BeginSession)
            self._state = transition(self._state, Move.WITHDRAW)
            self._close_session(reason)
            return
        session.ending = reason
        if self._state is State.SESSION_IDLE:
            self._delivery.queue(mdb.SessionCancelRequest())

    # --- link ----------------------------------------------------------------------------------

    def _heard(self, now: float) -> None:
        self._last_heard = now
        if not self._link_up:
            self._link_up = True
            self._emit(LinkRestored())

    def _lose_link(self) -> None:
        self._link_up = False
        self._emit(LinkLost())
        if self._session is not None and self._state is State.SESSION_IDLE:
            # The board is gone with no vend under way: end the session, and come back Inactive
            # so a returning VMC initialises us (JUST RESET) instead of reviving a stale session.
            # An approved vend stays open: its outcome (or a RESET, §7.4.7) comes with the board.
            self._reset(EndReason.LINK_LOST)

    # --- polls and commands --------------------------------------------------------------------

    def _on_poll(self) -> None:
        sent = self._delivery.answer_poll()
        if self._session is not None and any(isinstance(m, mdb.BeginSession) for m in sent):
            self._session.announced = True

    def _on_command(self, command: mdb.Command, now: float) -> None:
        if self._delivery.is_repeat(command):
            log.debug("repeated %s: same reply, no effect", command.name)
            self._delivery.repeat_reply()
            return
        self._delivery.new_command()
        self._delivery.answer_command(command, self._apply(command, now))

    def _approval_read(self) -> None:
        # Only an ACK proves it: a VMC that missed VEND APPROVED repeats VEND REQUEST, cancels
        # the vend or resets us, and none of those means it dispensed.
        if self._session is not None and self._session.vend is not None:
            self._session.vend.confirmed = True

    # --- commands ------------------------------------------------------------------------------

    def _apply(self, command: mdb.Command, now: float) -> mdb.CdReply:
        unsupported = UNSUPPORTED_REPLIES.get(type(command))
        if unsupported is not None:
            return (unsupported,)
        try:
            target = transition(self._state, MOVES[type(command)])
        except mdb.LocalMdbError as exc:
            return self._out_of_sequence(exc)
        return self._handlers[type(command)](command, target, now)

    def _out_of_sequence(self, exc: mdb.LocalMdbError) -> mdb.CdReply:
        log.warning("command out of sequence (%s); waiting for the VMC to RESET", exc.message)
        self._state = State.ERROR
        self._delivery.clear()
        self._delivery.queue(mdb.CommandOutOfSequence())
        return (mdb.Ack(),)

    def _just_ack(self, command: mdb.Command, target: State, now: float) -> mdb.CdReply:
        self._state = target
        return (mdb.Ack(),)

    def _on_reset(self, command: mdb.Reset, target: State, now: float) -> mdb.CdReply:
        self._emit(BoardReset())
        self._reset(EndReason.BOARD_RESET)
        return (mdb.Ack(),)

    def _reset(self, reason: EndReason) -> None:
        session = self._session
        if session is not None:
            self._settle_interrupted_vend(session)
            self._close_session(reason)
        self._state = State.INACTIVE
        self._disable_pending = False
        self._delivery.clear()
        self._delivery.queue(mdb.JustReset())

    def _settle_interrupted_vend(self, session: _Session) -> None:
        vend = session.vend
        if vend is None:
            return
        if vend.confirmed:
            # §7.4.7: a reset between VEND APPROVED and VEND SUCCESS is a VEND SUCCESS.
            self._succeed(session, vend.item)
        else:
            # The VMC never ACKed the approval, so it may not have dispensed: never charge for
            # what may not have been delivered.
            self._release_vend(session)

    def _on_setup_config(self, command: mdb.SetupConfig, target: State, now: float) -> mdb.CdReply:
        # The VMC is initialising us already: JUST RESET is old news.
        self._delivery.withdraw(mdb.JustReset)
        self._state = target
        # Refunding is free for us: a failed vend is simply never captured.
        options = mdb.ReaderOptions.CAN_REFUND
        if self.config.multivend:
            options |= mdb.ReaderOptions.MULTIVEND
        config = mdb.ReaderConfigData(
            feature_level=READER_FEATURE_LEVEL,
            currency=self.config.currency_code,
            scale_factor=self.config.scale_factor,
            decimal_places=self.config.decimal_places,
            max_response_time=self.config.max_response_time_s,
            options=int(options),
        )
        return (config,)

    def _on_request_id(
        self, command: mdb.ExpansionRequestId, target: State, now: float
    ) -> mdb.CdReply:
        self._state = target
        c = self.config
        return (mdb.PeripheralId(c.manufacturer, c.serial, c.model, c.software_version),)

    def _on_reader_enable(
        self, command: mdb.ReaderEnable, target: State, now: float
    ) -> mdb.CdReply:
        self._disable_pending = False
        if self._state is State.DISABLED:
            self._emit(ReaderEnabled())
        self._state = target
        return (mdb.Ack(),)

    def _on_reader_disable(
        self, command: mdb.ReaderDisable, target: State, now: float
    ) -> mdb.CdReply:
        if self._state is State.ENABLED:
            self._emit(ReaderDisabled())
        elif self._session is not None:
            self._disable_pending = True  # §7.4.12: the session completes normally first
        self._state = target
        return (mdb.Ack(),)

    def _on_reader_cancel(
        self, command: mdb.ReaderCancel, target: State, now: float
    ) -> mdb.CdReply:
        self._state = target
        return (mdb.Cancelled(),)

    # --- the vend ------------------------------------------------------------------------------

    def _on_vend_request(self, command: mdb.VendRequest, target: State, now: float) -> mdb.CdReply:
        session = self._open_session()
        self._state = target
        asked, item = command.price, command.item
        self._emit(VendRequested(asked, item))
        price = self._price_of(item, asked, command.expanded)
        reason = self._deny_reason(session, price)
        if reason is not None:
            self._state = transition(self._state, Move.DENY)
            session.idle_since = now
            self._emit(DenialSent(asked, item, reason))
            return (mdb.VendDenied(),)
        assert isinstance(price, int)
        # Local and immediate: no network round trip inside the uninterruptible Vend state.
        session.vend = _Vend(price, item, asked)
        self._emit(ApprovalSent(price, item, vmc_price=asked))
        return (mdb.VendApproved(price, expanded=command.expanded),)

    def _price_of(self, item: int, asked: int, expanded: bool) -> int | DenyReason:
        """The wire amount to approve for ``item``, or why there is none."""
        if self._price_mode == "vmc":
            return asked
        if self._planogram is None:
            return "no_planogram"
        listed = self._planogram.get(item)
        if listed is None:
            return "not_in_planogram"
        wire = self.config.to_scaled(listed)
        # Rounding would approve another price than the planogram's: refuse instead.
        if self.config.to_minor(wire) != listed or not 0 < wire <= MAX_APPROVED[expanded]:
            return "price_unrepresentable"
        return wire

    def _deny_reason(self, session: _Session, price: int | DenyReason) -> DenyReason | None:
        if session.ending is not None:
            return "session_ending"
        if isinstance(price, str):
            return price
        if price > session.credit_left:
            return "exceeds_credit"
        return None

    def _on_vend_success(self, command: mdb.VendSuccess, target: State, now: float) -> mdb.CdReply:
        session = self._open_session()
        self._succeed(session, command.item)
        self._after_vend(session, target, now)
        return (mdb.Ack(),)

    def _on_vend_failure(self, command: mdb.VendFailure, target: State, now: float) -> mdb.CdReply:
        self._fail_vend(target, now)
        return (mdb.Ack(),)  # refund done: nothing was charged

    def _on_vend_cancel(self, command: mdb.VendCancel, target: State, now: float) -> mdb.CdReply:
        # Only legal before approval (§7.4.6); ours is immediate, so the VMC gave up on an
        # approved vend. Nothing was dispensed: release it like a failure.
        self._fail_vend(target, now)
        return (mdb.VendDenied(),)

    def _fail_vend(self, target: State, now: float) -> None:
        session = self._open_session()
        self._release_vend(session)
        self._after_vend(session, target, now)

    def _release_vend(self, session: _Session) -> None:
        vend = _approved(session)
        session.vend = None
        self._emit(VendFailed(vend.item, vend.price, vend.vmc_price))

    def _succeed(self, session: _Session, item: int) -> None:
        vend = _approved(session)
        session.spent += vend.price
        session.vend = None
        # The board says what it dispensed; the price is the one we approved.
        self._emit(VendSucceeded(item, vend.price, vend.vmc_price))

    def _after_vend(self, session: _Session, target: State, now: float) -> None:
        self._state = target
        session.idle_since = now
        if session.ending is not None:
            self._delivery.queue(mdb.SessionCancelRequest())  # a cancel that waited for the vend

    # --- the end of a session ------------------------------------------------------------------

    def _on_session_complete(
        self, command: mdb.SessionComplete, target: State, now: float
    ) -> mdb.CdReply:
        session = self._session
        if session is not None:
            self._close_session(session.ending or EndReason.COMPLETED)
        self._state = target
        self._apply_pending_disable()
        return (mdb.EndSession(),)

    def _close_session(self, reason: EndReason) -> None:
        self._session = None
        self._delivery.withdraw(mdb.BeginSession, mdb.SessionCancelRequest)
        self._emit(SessionEnded(reason))

    def _apply_pending_disable(self) -> None:
        if self._disable_pending and self._state is State.ENABLED:
            self._state = transition(self._state, Move.READER_DISABLE)
            self._emit(ReaderDisabled())
        self._disable_pending = False

    def _open_session(self) -> _Session:
        if self._session is None:  # pragma: no cover - the state table rules this out
            raise mdb.LocalMdbError(f"no session in state {self._state.value}")
        return self._session

    def _emit(self, event: ReaderEvent) -> None:
        log.debug("reader event %s", event)
        self._events.append(event)


def _approved(session: _Session) -> _Vend:
    if session.vend is None:  # pragma: no cover - the state table rules this out
        raise mdb.LocalMdbError("no approved vend in this session")
    return session.vend

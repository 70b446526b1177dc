"""The vending machine controller: bus master of cashless device #1, pure (no I/O, no clock).

Driven like the reader: ``receive_data``/``receive_block`` with ``now``; ``data_to_send`` /
``blocks_to_send``; ``next_deadline``/``handle_timer``. The keypad is method calls (``select``,
``walk_away``, ``cancel``, ``jam``, ``power_cycle``); ``next_event`` says what happened, and
``outcomes`` is the ground truth of every vend.

Initialisation as App. A3 prescribes: RESET, POLL until JUST RESET, SETUP config (READER CONFIG
DATA at once or at a POLL), SETUP max/min prices, EXPANSION REQUEST ID (PERIPHERAL ID at once or
at a POLL), READER ENABLE; then a POLL every ``poll_interval_s``. A JUST RESET later on
re-initialises from SETUP; COMMAND OUT OF SEQUENCE, or no progress for the non-response time
(``non_response_s``, or the reader's max response time if longer), starts again with RESET,
except during a vend: the VMC settles a vend before it gives up on the reader.

Sessions are authorization first: BEGIN SESSION opens one; a selection sends VEND REQUEST; on
VEND APPROVED the motor turns for ``dispense_s``, then VEND SUCCESS or VEND FAILURE. Like a real
VMC it deducts the amount VEND APPROVED carried (§7.4.5), which may differ from its own price
(the reader's planogram decides), and records it as the outcome's ``charged``. Single vend
then sends SESSION COMPLETE; multi-vend (if both sides offer it) waits for another selection or
the reader's SESSION CANCEL REQUEST. Prices go on the wire scaled by the reader's config.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from vendgate.protocol import mdb

from ._machine import Machine, Slot, SlotError
from ._master import BusMaster, Trace

log = logging.getLogger(__name__)

VMC_IDENTITY = mdb.ExpansionRequestId("VGS", "000000000001", "board-sim", 0x0100)


class Phase(enum.Enum):
    OFF = "off"
    RESET = "reset"
    WAIT_JUST_RESET = "wait_just_reset"
    CONFIG = "config"
    PRICES = "prices"
    IDENTIFY = "identify"
    ENABLE = "enable"
    READY = "ready"


# Init commands a reader may just ACK, delivering their data at a later POLL (§7.4.2, §7.4.18).
DATA_COMES_LATER: dict[type[mdb.Command], Phase] = {
    mdb.SetupConfig: Phase.CONFIG,
    mdb.ExpansionRequestId: Phase.IDENTIFY,
}


class KeypadError(Exception):
    """The machine refuses a keypad action; the message says why, for the customer."""


class SessionStep(enum.Enum):
    """Where the session is, seen from the VMC."""

    NONE = "none"
    IDLE = "idle"
    REQUESTED = "requested"
    DISPENSING = "dispensing"
    REPORTING = "reporting"
    ENDING = "ending"


@dataclass(frozen=True)
class VmcConfig:
    poll_interval_s: float = 0.2
    response_timeout_s: float = 0.1
    command_gap_s: float = 0.002
    """Between a reply and the next command: whatever arrives meanwhile is stale (a repeat)."""
    retries: int = 2
    non_response_s: float = 5.0
    feature_level: int = 2
    multivend: bool = False
    dispense_s: float = 0.5
    power_off_s: float = 3.0


# --- events -------------------------------------------------------------------------------------

VendResult = Literal["success", "failure", "denied", "cancelled"]


@dataclass(frozen=True, slots=True)
class ReaderReady:
    pass


@dataclass(frozen=True, slots=True)
class SessionOpened:
    session: int
    funds: int


@dataclass(frozen=True, slots=True)
class VendOutcome:
    """What happened to one selection. ``price`` is the wire price asked in VEND REQUEST;
    ``reported`` is whether the reader acknowledged the outcome (False when a power cut or a
    reset cut the vend short: §7.4.7 makes the reader count an approved vend as a success);
    ``charged`` is what the VMC deducted from the credit for it, in wire units: the amount VEND
    APPROVED carried if the item dropped, else 0."""

    session: int
    slot: int
    item: int
    price: int
    result: VendResult
    reported: bool
    charged: int = 0


@dataclass(frozen=True, slots=True)
class SessionClosed:
    session: int


@dataclass(frozen=True, slots=True)
class PowerOff:
    pass


@dataclass(frozen=True, slots=True)
class PowerOn:
    pass


VmcEvent = ReaderReady | SessionOpened | VendOutcome | SessionClosed | PowerOff | PowerOn


@dataclass
class _Session:
    number: int
    funds: int
    step: SessionStep = SessionStep.IDLE
    slot: Slot | None = None
    price: int = 0
    approved: int = 0  # the amount VEND APPROVED carried for the current vend
    delivered: bool = False
    end_after_vend: bool = False
    walked_away: bool = False
    spent: int = 0


class Vmc:
    def __init__(
        self,
        machine: Machine | None = None,
        config: VmcConfig | None = None,
        *,
        now: float = 0.0,
        trace: Trace | None = None,
    ) -> None:
        self.machine = machine if machine is not None else Machine()
        self.config = config if config is not None else VmcConfig()
        self.master = BusMaster(
            response_timeout_s=self.config.response_timeout_s,
            retries=self.config.retries,
            trace=trace,
        )
        self.phase = Phase.RESET
        self.reader_config: mdb.ReaderConfigData | None = None
        self.reader_id: mdb.PeripheralId | None = None
        self.outcomes: list[VendOutcome] = []
        self._session: _Session | None = None
        self._sessions = 0
        self._queued: deque[mdb.Command] = deque()
        self._asked = False  # the init step's command was ACKed: its data comes at a POLL
        self._next_send_at = now
        self._silent_since: float | None = None
        self._waiting_since: float | None = None
        self._power_on_at: float | None = None
        self._dispense_done_at: float | None = None
        self._events: deque[VmcEvent] = deque()
        self._on_response: dict[type[mdb.Response], Callable[[Any, float], None]] = {
            mdb.JustReset: self._on_just_reset,
            mdb.ReaderConfigData: self._on_reader_config,
            mdb.PeripheralId: self._on_peripheral_id,
            mdb.BeginSession: self._on_begin_session,
            mdb.SessionCancelRequest: self._on_cancel_request,
            mdb.VendApproved: self._on_vend_approved,
            mdb.VendDenied: self._on_vend_denied,
            mdb.EndSession: self._on_end_session,
            mdb.CommandOutOfSequence: self._on_out_of_sequence,
        }

    # --- what is going on ----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY

    @property
    def step(self) -> SessionStep:
        return self._session.step if self._session is not None else SessionStep.NONE

    @property
    def funds(self) -> int | None:
        """The credit BEGIN SESSION announced, None without a session."""
        return self._session.funds if self._session is not None else None

    def next_event(self) -> VmcEvent | None:
        return self._events.popleft() if self._events else None

    def status_line(self) -> str:
        power = "off" if self.phase is Phase.OFF else "on"
        parts = [f"power={power}", f"reader={self.phase.value}", f"session={self.step.value}"]
        if self._session is not None:
            parts.append(f"credit={self._session.funds - self._session.spent}")
        if self.outcomes:
            last = self.outcomes[-1]
            parts.append(
                f"last_vend=slot:{last.slot},item:{last.item},{last.result},charged:{last.charged}"
            )
        return " ".join(parts)

    # --- the bus -------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        if self.phase is Phase.OFF:
            return  # a dead board hears nothing
        self.master.link.feed(data)
        for block in self.master.link:
            self.receive_block(block, now)

    def receive_block(self, block: mdb.Block, now: float) -> None:
        if self.phase is Phase.OFF:
            return
        answered = self.master.receive_block(block, now)
        if answered is not None:
            self._on_reply(*answered, now)
        self._pump(now)

    def blocks_to_send(self) -> list[mdb.Block]:
        return self.master.take_blocks()

    def data_to_send(self, now: float) -> bytes:
        return b"".join(mdb.encode_frame(block) for block in self.blocks_to_send())

    def next_deadline(self) -> float | None:
        if self.phase is Phase.OFF:
            return self._power_on_at
        deadlines = [self.master.deadline, self._dispense_done_at, self._stall_deadline()]
        if not self.master.busy:
            deadlines.append(self._next_send_at)
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> None:
        if self.phase is Phase.OFF:
            if self._power_on_at is None or now < self._power_on_at:
                return
            self._power_on(now)
        given_up = self.master.handle_timer(now)
        if given_up is not None:
            self._on_silence(given_up, now)
        if self._dispense_done_at is not None and now >= self._dispense_done_at:
            self._finish_dispense(now)
        stall = self._stall_deadline()
        if stall is not None and now >= stall:
            log.warning("reader made no progress for %.1f s; resetting it", self._non_response())
            self._restart(now)
        self._pump(now)

    # --- the keypad ----------------------------------------------------------------------------

    def select(self, number: int, now: float) -> Slot:
        """The customer presses selection ``number``: VEND REQUEST for its price and item."""
        session = self._require_session("select")
        if session.step is not SessionStep.IDLE:
            raise KeypadError(f"busy: the session is {session.step.value}")
        try:
            slot = self.machine.available(number)
        except SlotError as exc:
            raise KeypadError(str(exc)) from None
        session.slot, session.price = slot, self._scaled(slot.price)
        session.step = SessionStep.REQUESTED
        self._queued.append(mdb.VendRequest(session.price, slot.item))
        self._next_send_at = min(self._next_send_at, now)
        return slot

    def walk_away(self) -> None:
        """The customer leaves without choosing: nothing goes on the bus; the reader's selection
        timeout (SESSION CANCEL REQUEST) will end the session."""
        self._require_session("walk away").walked_away = True

    def cancel(self, now: float) -> None:
        """The customer presses cancel: the VMC ends the session (SESSION COMPLETE)."""
        session = self._require_session("cancel")
        if session.step is not SessionStep.IDLE:
            raise KeypadError(f"cannot cancel now: the session is {session.step.value}")
        self._end_session()
        self._next_send_at = min(self._next_send_at, now)

    def jam(self, number: int) -> Slot:
        try:
            self.machine.jam(number)
            return self.machine.slot(number)
        except SlotError as exc:
            raise KeypadError(str(exc)) from None

    def power_cycle(self, now: float, off_s: float | None = None) -> None:
        """Cut the power for ``off_s`` (default ``power_off_s``): the bus goes silent, the VMC
        forgets everything, and boots with RESET."""
        self._abandon_session(power_cut=True)
        self.master.abort()
        self._queued.clear()
        self.phase = Phase.OFF
        self._power_on_at = now + (self.config.power_off_s if off_s is None else off_s)
        self._dispense_done_at = self._waiting_since = self._silent_since = None
        self._emit(PowerOff())

    def _require_session(self, action: str) -> _Session:
        if self.phase is not Phase.READY:
            raise KeypadError(f"cannot {action}: the cashless reader is {self.phase.value}")
        if self._session is None:
            raise KeypadError(f"cannot {action}: no credit (pay first)")
        return self._session

    def _scaled(self, price: int) -> int:
        # Prices are minor units of a 2-decimal currency; the reader said how it counts.
        config = self.reader_config
        if config is None:
            return price
        return int(price * 10**config.decimal_places) // (config.scale_factor * 100)

    # --- sending -------------------------------------------------------------------------------

    def _pump(self, now: float) -> None:
        if self.phase is Phase.OFF or self.master.busy or now < self._next_send_at:
            return
        command = self._queued.popleft() if self._queued else self._init_or_poll()
        self.master.send(command, now)

    def _init_or_poll(self) -> mdb.Command:
        phase = self.phase
        if phase is Phase.RESET:
            return mdb.Reset()
        if phase is Phase.CONFIG and not self._asked:
            return mdb.SetupConfig(self.config.feature_level)
        if phase is Phase.PRICES:
            low, high = (self._scaled(p) for p in self.machine.price_range())
            return mdb.SetupPrices(max_price=high, min_price=low)
        if phase is Phase.IDENTIFY and not self._asked:
            return VMC_IDENTITY
        if phase is Phase.ENABLE:
            return mdb.ReaderEnable()
        return mdb.Poll()

    def _schedule(self, now: float) -> None:
        urgent = bool(self._queued) or not isinstance(self._init_or_poll(), mdb.Poll)
        pause = self.config.command_gap_s if urgent else self.config.poll_interval_s
        self._next_send_at = now + pause

    # --- replies -------------------------------------------------------------------------------

    def _on_reply(self, command: mdb.Command, reply: mdb.CdReply, now: float) -> None:
        self._silent_since = None
        data = [m for m in reply if isinstance(m, mdb.Response)]
        if data:
            self.master.send_ack()  # first: the ACK belongs to this reply (§2.2)
        for message in data:
            handler = self._on_response.get(type(message))
            if handler is not None:
                handler(message, now)
        self._after_command(command, now)
        self._schedule(now)

    def _after_command(self, command: mdb.Command, now: float) -> None:
        """Progress that the command's acceptance alone makes (its data may come later)."""
        if isinstance(command, mdb.Reset) and self.phase is Phase.RESET:
            self._enter(Phase.WAIT_JUST_RESET)
        elif DATA_COMES_LATER.get(type(command)) is self.phase:
            self._await_data(now)
        elif isinstance(command, mdb.SetupPrices) and self.phase is Phase.PRICES:
            self._enter(Phase.IDENTIFY)
        elif isinstance(command, mdb.ReaderEnable) and self.phase is Phase.ENABLE:
            self._enter(Phase.READY)
            self._emit(ReaderReady())
        elif isinstance(command, mdb.VendSuccess | mdb.VendFailure):
            self._vend_reported()
        elif self.step in (SessionStep.REQUESTED, SessionStep.ENDING):
            # VEND REQUEST or SESSION COMPLETE was ACKed: the answer comes at a POLL
            self._waiting_since = self._waiting_since or now

    def _await_data(self, now: float) -> None:
        self._asked = True  # ACKed: READER CONFIG DATA / PERIPHERAL ID comes at a POLL
        self._waiting_since = self._waiting_since or now

    def _on_just_reset(self, message: mdb.JustReset, now: float) -> None:
        if self.phase not in (Phase.RESET, Phase.WAIT_JUST_RESET):
            log.info("the reader reset itself; initialising it again")
            self._abandon_session(power_cut=False)
            self._queued.clear()
        self._enter(Phase.CONFIG)

    def _on_reader_config(self, message: mdb.ReaderConfigData, now: float) -> None:
        self.reader_config = message
        level = min(self.config.feature_level, message.feature_level)
        self.master.dialect = mdb.Dialect(level=level)
        if self.phase is Phase.CONFIG:
            self._enter(Phase.PRICES)

    def _on_peripheral_id(self, message: mdb.PeripheralId, now: float) -> None:
        self.reader_id = message
        if self.phase is Phase.IDENTIFY:
            self._enter(Phase.ENABLE)

    def _on_out_of_sequence(self, message: mdb.CommandOutOfSequence, now: float) -> None:
        log.warning("reader says command out of sequence; resetting it")  # §7.7 example 7
        self._restart(now)

    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        self._asked = False
        self._waiting_since = None

    # --- sessions ------------------------------------------------------------------------------

    def _on_begin_session(self, message: mdb.BeginSession, now: float) -> None:
        if self.phase is not Phase.READY or self._session is not None:
            return  # a repeat of one we already have
        self._sessions += 1
        self._session = _Session(self._sessions, message.funds)
        self._emit(SessionOpened(self._sessions, message.funds))

    def _on_cancel_request(self, message: mdb.SessionCancelRequest, now: float) -> None:
        session = self._session
        if session is None or session.step is SessionStep.ENDING:
            return
        if session.step is SessionStep.IDLE:
            self._end_session()
        else:
            session.end_after_vend = True

    def _on_vend_approved(self, message: mdb.VendApproved, now: float) -> None:
        session = self._session
        if session is None or session.step is not SessionStep.REQUESTED:
            return  # a repeated approval: this vend is already under way
        session.step = SessionStep.DISPENSING
        session.approved = message.amount  # what we deduct if it drops, whatever we asked
        self._waiting_since = None
        self._dispense_done_at = now + self.config.dispense_s

    def _on_vend_denied(self, message: mdb.VendDenied, now: float) -> None:
        session = self._session
        if session is None or session.step is not SessionStep.REQUESTED:
            return
        self._waiting_since = None
        self._record(session, "denied", reported=True)
        self._after_vend(session)

    def _finish_dispense(self, now: float) -> None:
        self._dispense_done_at = None
        session = self._session
        if session is None or session.slot is None or session.step is not SessionStep.DISPENSING:
            return
        session.delivered = self.machine.dispense(session.slot.number)
        if session.delivered:
            self._queued.append(mdb.VendSuccess(session.slot.item))
        else:
            self._queued.append(mdb.VendFailure())
        session.step = SessionStep.REPORTING
        self._schedule(now)

    def _vend_reported(self) -> None:
        session = self._session
        if session is None or session.step is not SessionStep.REPORTING:
            return
        if session.delivered:
            session.spent += session.approved
        self._record(session, "success" if session.delivered else "failure", reported=True)
        self._after_vend(session)

    def _after_vend(self, session: _Session) -> None:
        session.slot, session.approved = None, 0
        options = self.reader_config.options if self.reader_config is not None else 0
        multivend = self.config.multivend and bool(options & mdb.ReaderOptions.MULTIVEND)
        if multivend and not session.end_after_vend:
            session.step = SessionStep.IDLE
        else:
            self._end_session()

    def _end_session(self) -> None:
        if self._session is not None:
            self._session.step = SessionStep.ENDING
            self._queued.append(mdb.SessionComplete())

    def _on_end_session(self, message: mdb.EndSession, now: float) -> None:
        session = self._session
        if session is None or session.step not in (SessionStep.IDLE, SessionStep.ENDING):
            return
        self._session = None
        self._waiting_since = None
        self._emit(SessionClosed(session.number))

    def _record(self, session: _Session, result: VendResult, *, reported: bool) -> None:
        slot = session.slot
        if slot is None:  # pragma: no cover - a vend always has its slot
            return
        charged = session.approved if result == "success" else 0
        outcome = VendOutcome(
            session.number,
            slot.number,
            slot.item,
            session.price,
            result,
            reported=reported,
            charged=charged,
        )
        self.outcomes.append(outcome)
        self._emit(outcome)

    def _abandon_session(self, *, power_cut: bool) -> None:
        """The session dies with a reset or a power cut; settle the vend as the machine sees it."""
        session = self._session
        if session is None:
            return
        if session.step is SessionStep.DISPENSING and session.slot is not None:
            # The motor was already turning: the product drops (the case §7.4.7 covers).
            session.delivered = self.machine.dispense(session.slot.number, can_jam=False)
            session.step = SessionStep.REPORTING
        if session.step is SessionStep.REPORTING:
            self._record(session, "success" if session.delivered else "failure", reported=False)
        elif session.step is SessionStep.REQUESTED:
            self._record(session, "cancelled", reported=False)
        self._session = None
        self._dispense_done_at = None
        self._emit(SessionClosed(session.number))
        log.info("session %d abandoned (%s)", session.number, "power cut" if power_cut else "reset")

    # --- silence, stalls and restarts ----------------------------------------------------------

    def _on_silence(self, command: mdb.Command, now: float) -> None:
        self._silent_since = self._silent_since if self._silent_since is not None else now
        if self.phase is Phase.READY and not isinstance(command, mdb.Poll):
            self._queued.appendleft(command)  # try again at the next tick
        self._next_send_at = now + self.config.poll_interval_s

    def _stall_deadline(self) -> float | None:
        if self.step in (SessionStep.DISPENSING, SessionStep.REPORTING):
            return None  # settle the vend first: a reset now would count it as a success
        since = [t for t in (self._silent_since, self._waiting_since) if t is not None]
        return min(since) + self._non_response() if since else None

    def _non_response(self) -> float:
        reader_limit = self.reader_config.max_response_time if self.reader_config else 0
        return max(self.config.non_response_s, float(reader_limit))

    def _restart(self, now: float) -> None:
        self._abandon_session(power_cut=False)
        self._queued.clear()
        self._enter(Phase.RESET)
        self._silent_since = None
        self._next_send_at = now

    def _power_on(self, now: float) -> None:
        self._power_on_at = None
        self.reader_config = self.reader_id = None
        self.master.dialect = mdb.ANY_DIALECT
        self._enter(Phase.RESET)
        self._next_send_at = now
        self._emit(PowerOn())

    def _emit(self, event: VmcEvent) -> None:
        log.debug("vmc event %s", event)
        self._events.append(event)

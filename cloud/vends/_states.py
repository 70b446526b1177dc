"""The vend session's state machine, as data: a literal table of legal moves, no I/O.

::

    creating ──payment_created──▶ awaiting_approval ──payment_authorized──▶ authorized
       │  └──────────────payment_authorized───────────────────────────────────▲   │
       └─payment_failed─▶ closed ◀─payment_failed─ awaiting_approval            │
    creating / awaiting_approval ──approval_timed_out──▶ settling (cancel only)  │
                                                                                │
    authorized ──edge_started / edge_dispensed──▶ vending                       │
    authorized ──edge_rejected / edge_ended / deadline_passed──▶ settling ◀─────┘
    vending ──edge_ended / deadline_passed──▶ settling ──settled──▶ closed

Any (state, input) pair missing from the table is ignored: that is how duplicated and
reordered webhooks, polls and MQTT events change nothing after the first.
"""

from __future__ import annotations

from enum import StrEnum


class VendState(StrEnum):
    CREATING = "creating"  # the row exists; the Vipps payment is being created
    AWAITING_APPROVAL = "awaiting_approval"  # the customer decides in the app
    AUTHORIZED = "authorized"  # money reserved; the `authorized` command is out
    VENDING = "vending"  # the machine opened its session
    SETTLING = "settling"  # decision recorded; capture, cancel, verify, receipt
    CLOSED = "closed"


class VendInput(StrEnum):
    PAYMENT_CREATED = "payment_created"
    PAYMENT_AUTHORIZED = "payment_authorized"
    PAYMENT_FAILED = "payment_failed"  # aborted, expired, terminated, or refused at create
    EDGE_STARTED = "edge_started"
    EDGE_DISPENSED = "edge_dispensed"
    EDGE_REJECTED = "edge_rejected"
    EDGE_ENDED = "edge_ended"
    DEADLINE_PASSED = "deadline_passed"  # the machine never reported in time
    APPROVAL_TIMED_OUT = "approval_timed_out"  # the customer did not approve in the window
    SETTLED = "settled"


S, In = VendState, VendInput

TRANSITIONS: dict[tuple[VendState, VendInput], VendState] = {
    (S.CREATING, In.PAYMENT_CREATED): S.AWAITING_APPROVAL,
    # Approval can be seen before our own record of the create call (a crash in between).
    (S.CREATING, In.PAYMENT_AUTHORIZED): S.AUTHORIZED,
    (S.CREATING, In.PAYMENT_FAILED): S.CLOSED,
    (S.AWAITING_APPROVAL, In.PAYMENT_AUTHORIZED): S.AUTHORIZED,
    (S.AWAITING_APPROVAL, In.PAYMENT_FAILED): S.CLOSED,
    # A walk-away: cancel the payment (whatever Vipps reserved is released), free the machine.
    (S.CREATING, In.APPROVAL_TIMED_OUT): S.SETTLING,
    (S.AWAITING_APPROVAL, In.APPROVAL_TIMED_OUT): S.SETTLING,
    (S.AUTHORIZED, In.EDGE_STARTED): S.VENDING,
    # `dispensed` overtook `started`: the session evidently started.
    (S.AUTHORIZED, In.EDGE_DISPENSED): S.VENDING,
    (S.AUTHORIZED, In.EDGE_REJECTED): S.SETTLING,
    (S.AUTHORIZED, In.EDGE_ENDED): S.SETTLING,
    (S.AUTHORIZED, In.DEADLINE_PASSED): S.SETTLING,
    (S.VENDING, In.EDGE_DISPENSED): S.VENDING,
    (S.VENDING, In.EDGE_ENDED): S.SETTLING,
    (S.VENDING, In.DEADLINE_PASSED): S.SETTLING,
    (S.SETTLING, In.SETTLED): S.CLOSED,
}

# While open, the machine is busy: no second customer can start a purchase there. Settling
# happens after the machine is free again.
OPEN_STATES = frozenset({S.CREATING, S.AWAITING_APPROVAL, S.AUTHORIZED, S.VENDING})

# The order states are reached in; a session never moves backwards.
RANK = {state: rank for rank, state in enumerate(VendState)}


def next_state(state: VendState, event: VendInput) -> VendState | None:
    """The state after ``event``, or None if the event means nothing now (ignore it)."""
    return TRANSITIONS.get((state, event))


def is_open(state: VendState) -> bool:
    return state in OPEN_STATES

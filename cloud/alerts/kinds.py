"""The kinds of alert: pure, so the vend core can name them without the database."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AlertKind"]


class AlertKind(StrEnum):
    # Vipps told us something that disagrees with our own record (webhook amount, currency).
    PAYMENT_DISAGREES = "payment_disagrees"
    # A settlement step keeps failing or Vipps' aggregate keeps disagreeing with the decision.
    SETTLEMENT_STUCK = "settlement_stuck"
    # The machine charged or asked another price than the planogram's.
    PRICE_MISMATCH = "price_mismatch"
    # An event from a machine that the cloud could not apply: acked, recorded, not applied.
    EVENT_REJECTED = "event_rejected"
    # An approval that came after the approval window: released, the machine not unlocked.
    LATE_APPROVAL = "late_approval"
    # Some other step of a session (creating the payment, polling) keeps failing.
    STEP_FAILING = "step_failing"

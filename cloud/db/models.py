"""Every table of the cloud, in one place (SQLModel; API bodies are separate Structs).

Times are stored as UTC; SQLite hands them back naive, so read them through ``clock.as_utc``.
Money is integer minor units in the row's ``currency``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, text
from sqlmodel import Field, SQLModel

# One open vend session per machine, enforced by the database (a partial unique index), so
# two replicas scanning the same machine at once cannot both open one.
ONE_OPEN_VEND_INDEX = "uq_vend_sessions_one_open_per_machine"


class Machine(SQLModel, table=True):
    __tablename__ = "machines"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    currency: str = Field(default="NOK", max_length=3)
    disabled: bool = False
    # Where the machine stands, for people ("Lobby, 2nd floor"); never shown to customers.
    location: str = Field(default="", max_length=200)
    # The machine's merchant-redirect QR (Vipps QR API): its id and the URL the QR encodes.
    redirect_qr_id: str | None = Field(default=None, max_length=100)
    qr_url: str | None = Field(default=None, max_length=2000)
    # The merchant-callback QR of this machine (Vipps QR API id), if it has one.
    callback_qr_id: str | None = Field(default=None, max_length=100, unique=True)
    # The last `status` message applied: online or not, its boot, its timestamp and its seq
    # (the ordering guard: seq within a boot, the timestamp across boots).
    online: bool = False
    boot_id: str | None = Field(default=None, max_length=128)
    status_at: datetime | None = None
    status_seq: int | None = Field(default=None, sa_type=BigInteger)
    # When the cloud last heard anything from the machine (status, telemetry, events).
    last_seen_at: datetime | None = None
    # Since when ``online`` has been what it is (the status that flipped it).
    state_since: datetime | None = None
    # What the machine last told about itself: software versions (status, JSON), its vend
    # board's state and its outbox depth (telemetry, hello).
    versions: str = Field(default="{}", max_length=2000)
    board_state: str | None = Field(default=None, max_length=64)
    outbox_depth: int | None = None
    # Deleted by an operator: kept for its sales history, gone from the fleet and the broker.
    deleted_at: datetime | None = None
    created_at: datetime
    # Who prices a vend: "planogram" (the slots below; the machine's own prices are ignored)
    # or "vmc" (the machine's prices are charged).
    price_mode: str = Field(default="planogram", max_length=16)
    # Hundredths of a percent: the VAT of an item the planogram does not list (VMC prices).
    vat_rate: int = 2500


class Slot(SQLModel, table=True):
    """One planogram entry: what item number sells what, for how much, at which VAT rate."""

    __tablename__ = "slots"

    machine_id: str = Field(foreign_key="machines.id", primary_key=True, max_length=64)
    item: int = Field(primary_key=True)
    name: str = Field(max_length=100)
    price: int
    # Hundredths of a percent, as Vipps' taxRate: 2500 = 25 %, 1500 = 15 %.
    vat_rate: int = 2500
    # Items left, when the operator counts them (None: not counted); a disabled slot is not
    # sold and does not count towards the reservation.
    stock: int | None = None
    enabled: bool = True


class VendSession(SQLModel, table=True):
    """One customer's purchase at one machine, from scan to settled payment."""

    __tablename__ = "vend_sessions"
    __table_args__ = (
        Index(
            ONE_OPEN_VEND_INDEX,
            "machine_id",
            unique=True,
            sqlite_where=text("is_open = 1"),
            postgresql_where=text("is_open"),
        ),
        Index("ix_vend_sessions_due", "due_at"),
    )

    # Also the Vipps payment reference and the prefix of every idempotency key.
    id: str = Field(primary_key=True, max_length=40)
    machine_id: str = Field(foreign_key="machines.id", index=True, max_length=64)
    state: str = Field(max_length=32)
    is_open: bool = True
    # How the customer came: "redirect" (our scan page) or "callback" (Vipps check-in).
    mode: str = Field(default="redirect", max_length=16)
    # The status page's secret: the only key a customer holds.
    status_token: str = Field(unique=True, max_length=64)
    currency: str = Field(max_length=3)
    max_amount: int
    # The planogram as it was at the scan (JSON: item -> price, name, VAT), so an operator's
    # price change never reaches a session already open. Empty: read the slots (older rows).
    planogram: str = Field(default="", sa_type=Text)
    authorized_amount: int = 0
    # The `authorized` command: one message id re-sent until the edge answers.
    command_id: str | None = Field(default=None, max_length=64)
    command_expires_at: datetime | None = None
    command_sent_at: datetime | None = None
    settle_by: datetime | None = None
    end_reason: str | None = Field(default=None, max_length=32)
    # The settlement decision and its steps, each recorded before the next is tried.
    capture_amount: int | None = None
    cancel_amount: int | None = None
    captured_at: datetime | None = None
    cancelled_at: datetime | None = None
    verified_at: datetime | None = None
    receipt_at: datetime | None = None
    outcome: str | None = Field(default=None, max_length=32)
    created_at: datetime
    updated_at: datetime
    authorized_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    closed_at: datetime | None = None
    # Background work: when to look next (None: nothing to do) and who holds it until when.
    due_at: datetime | None = None
    lease_until: datetime | None = None
    failures: int = 0
    last_error: str | None = Field(default=None, max_length=500)


class VendLine(SQLModel, table=True):
    """One vend attempt reported by the machine (from `dispensed`, then `ended`'s list)."""

    __tablename__ = "vend_lines"

    id: int | None = Field(default=None, primary_key=True)
    vend_id: str = Field(foreign_key="vend_sessions.id", index=True, max_length=40)
    position: int
    item: int
    price: int
    success: bool


class VendStep(SQLModel, table=True):
    """The session's log: every transition and money step, in order, for people to read."""

    __tablename__ = "vend_steps"

    id: int | None = Field(default=None, primary_key=True)
    vend_id: str = Field(foreign_key="vend_sessions.id", index=True, max_length=40)
    at: datetime
    step: str = Field(max_length=40)
    detail: str = Field(default="", max_length=500)


class Payment(SQLModel, table=True):
    """The Vipps payment of a session: what we asked for and what Vipps last told us."""

    __tablename__ = "payments"

    reference: str = Field(primary_key=True, max_length=50)
    vend_id: str = Field(foreign_key="vend_sessions.id", unique=True, max_length=40)
    amount: int
    currency: str = Field(max_length=3)
    customer_token: str | None = Field(default=None, max_length=500)
    redirect_url: str | None = Field(default=None, max_length=2000)
    state: str | None = Field(default=None, max_length=16)
    authorized: int = 0
    captured: int = 0
    cancelled: int = 0
    next_poll_at: datetime | None = None
    # Webhook hints received while awaiting approval: a read that started before the latest
    # one does not push the next read out (see the core's PaymentRead).
    hints: int = 0
    updated_at: datetime


class ProcessedMessage(SQLModel, table=True):
    """Idempotency: one row per handled MQTT event id or webhook (reference + name)."""

    __tablename__ = "processed_messages"

    key: str = Field(primary_key=True, max_length=300)
    received_at: datetime


class OutboxCommand(SQLModel, table=True):
    """A command for a machine, written in the transaction that decided it, published after."""

    __tablename__ = "outbox_commands"

    id: str = Field(primary_key=True, max_length=64)  # the MQTT message id
    machine_id: str = Field(max_length=64)
    topic: str = Field(max_length=300)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime
    published_at: datetime | None = Field(default=None, index=True)


class Alert(SQLModel, table=True):
    """Something an operator must look at: a price mismatch, a rejected event, a stuck step.

    Alerts are written in the transaction that found the problem, so none is lost; the
    back office reads, acknowledges and forwards them.
    """

    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    kind: str = Field(max_length=40)
    machine_id: str | None = Field(default=None, max_length=64, index=True)
    vend_id: str | None = Field(default=None, max_length=40, index=True)
    detail: str = Field(default="", max_length=1000)
    acknowledged_at: datetime | None = None


class RejectedEvent(SQLModel, table=True):
    """An event from a machine that the cloud could not apply: acknowledged, kept, not applied.

    Its ``processed_messages`` row (same key) makes a re-send acked again and applied never;
    the payload is kept whole (at most 64 KiB), so an operator can read it or replay it.
    """

    __tablename__ = "rejected_events"

    key: str = Field(primary_key=True, max_length=300)  # "evt:{machine}:{event id}"
    machine_id: str = Field(max_length=64, index=True)
    message_type: str = Field(max_length=40)  # "evt/dispensed": the topic after the machine id
    event_id: str = Field(max_length=128)
    reason: str = Field(max_length=1000)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at: datetime = Field(index=True)


class WebhookRegistration(SQLModel, table=True):
    """A webhook registered with Vipps by this app; its secret verifies deliveries."""

    __tablename__ = "webhook_registrations"

    id: str = Field(primary_key=True, max_length=64)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=200)
    created_at: datetime


class ApiKey(SQLModel, table=True):
    """An operator's API key: only a digest of its secret is kept (the key is shown once).

    Looked up by ``id`` (the key's public part) and checked on every request, so a revoked key
    stops working at once on every replica.
    """

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=100)
    scopes: str = Field(max_length=100)  # space-separated: "read machines money admin"
    digest: str = Field(max_length=64)  # SHA-256 of the secret, hex
    created_at: datetime
    revoked_at: datetime | None = None


class MachineCredential(SQLModel, table=True):
    """A machine's broker password, as a digest: checked by the embedded broker on connect."""

    __tablename__ = "machine_credentials"

    machine_id: str = Field(foreign_key="machines.id", primary_key=True, max_length=64)
    digest: str = Field(max_length=64)
    issued_at: datetime
    # Revoked: the broker refuses the machine until a new password is issued (rotation).
    revoked_at: datetime | None = None


class ClaimCode(SQLModel, table=True):
    """A one-time code a field technician types on the machine to fetch its credentials."""

    __tablename__ = "claim_codes"

    digest: str = Field(primary_key=True, max_length=64)
    machine_id: str = Field(foreign_key="machines.id", index=True, max_length=64)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None

"""The cloud's database: tables, engine, migrations."""

from ._once import first_time
from .engine import SessionFactory, create_engine, is_postgres, session_factory, transaction
from .migrate import upgrade_to_head
from .models import (
    ONE_OPEN_VEND_INDEX,
    Alert,
    ApiKey,
    ClaimCode,
    Machine,
    MachineCredential,
    OutboxCommand,
    Payment,
    ProcessedMessage,
    RejectedEvent,
    Slot,
    VendLine,
    VendSession,
    VendStep,
    WebhookRegistration,
)

__all__ = [
    "ONE_OPEN_VEND_INDEX",
    "Alert",
    "ApiKey",
    "ClaimCode",
    "Machine",
    "MachineCredential",
    "OutboxCommand",
    "Payment",
    "ProcessedMessage",
    "RejectedEvent",
    "SessionFactory",
    "Slot",
    "VendLine",
    "VendSession",
    "VendStep",
    "WebhookRegistration",
    "create_engine",
    "first_time",
    "is_postgres",
    "session_factory",
    "transaction",
    "upgrade_to_head",
]

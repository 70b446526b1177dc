"""The errors of the MQTT contract: one root, one branch for topics and one for payloads."""

from __future__ import annotations

__all__ = ["ContractError", "MachineIdError", "MessageError", "TopicError"]


class ContractError(ValueError):
    """Something broke the vendgate MQTT contract (a topic or a payload)."""


class TopicError(ContractError):
    """A topic or topic filter that is malformed or not part of the vendgate tree."""


class MachineIdError(TopicError):
    """A machine id unusable as a topic level, MQTT username and client id."""


class MessageError(ContractError):
    """A payload that is not a valid message of the wire format, or a message built wrong.

    ``message_type`` is the wire name (``"evt/dispensed"``), ``field`` the dotted path of the
    offending field when one is to blame (``"amount.value"``), ``reason`` what is wrong with it.
    """

    def __init__(self, message_type: str, reason: str, field: str | None = None) -> None:
        self.message_type = message_type
        self.reason = reason
        self.field = field
        where = f", field `{field}`" if field else ""
        super().__init__(f"invalid {message_type} message{where}: {reason}")

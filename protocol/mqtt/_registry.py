"""Which message class a topic carries, and decoding a payload by its topic."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vendgate.protocol.mqtt._envelope import Message, Payload, decode_as
from vendgate.protocol.mqtt._errors import MessageError
from vendgate.protocol.mqtt._messages import (
    Ack,
    Authorized,
    Cancel,
    CloudPresence,
    Config,
    Dispensed,
    Ended,
    Hello,
    Ping,
    Pong,
    Rejected,
    Started,
    Status,
    Telemetry,
)
from vendgate.protocol.mqtt._topics import ParsedTopic, TopicKind

__all__ = ["MESSAGE_TYPES", "decode", "decode_for_topic", "message_type"]

_ALL_TYPES: tuple[type[Message], ...] = (
    Status,
    Telemetry,
    Authorized,
    Cancel,
    Ack,
    Config,
    Started,
    Rejected,
    Dispensed,
    Ended,
    Hello,
    CloudPresence,
    Ping,
    Pong,
)

MESSAGE_TYPES: Mapping[str, type[Message]] = MappingProxyType(
    {cls.wire_name(): cls for cls in _ALL_TYPES}
)
"""Wire name (``"status"``, ``"cmd/authorized"``, ``"evt/dispensed"``, ``"cloud"``...) to class."""


def message_type(kind: TopicKind | str, name: str | None = None) -> type[Message]:
    """The class carried on ``kind``/``name`` topics; also accepts a wire name alone."""
    wire_name = str(kind) if name is None else f"{kind}/{name}"
    try:
        return MESSAGE_TYPES[wire_name]
    except KeyError:
        raise MessageError(wire_name, "no such message type in wire format v1") from None


def decode(kind_name: str, payload: Payload) -> Message:
    """Strictly decode ``payload`` as the message type named ``kind_name`` (``"evt/ended"``)."""
    return decode_as(message_type(kind_name), payload)


def decode_for_topic(topic: ParsedTopic, payload: Payload) -> Message:
    """Decode a payload received on ``topic`` (from ``TopicTree.parse``)."""
    return decode_as(message_type(topic.kind, topic.name), payload)

"""The versioned envelope every payload shares, and strict JSON encoding/decoding of it.

Decoding rules (the public contract, see docs/mqtt-contract.md):

- unknown fields are ignored, so a newer sender that added fields still talks to us;
- ``v`` is required and must be a version we speak; anything else is refused;
- everything else wrong (not JSON, not an object, a missing or mistyped field, a naive time,
  bad money, an integer out of its bounds) becomes one ``MessageError`` naming the message
  type and the field.

Every integer is bounded, so a receiver can store what it decoded as it is: counts fit a
signed 64-bit column, item numbers MDB's 16 bits, money a signed 32-bit amount
(``MAX_WIRE_VALUE``, in ``vendgate.protocol._money``).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, NoReturn, Self, TypeAlias, TypeVar

import msgspec

from vendgate.protocol.mqtt._errors import MessageError
from vendgate.protocol.mqtt._topics import TopicKind

__all__ = [
    "MAX_COUNT",
    "MAX_ITEM",
    "MAX_PAYLOAD_BYTES",
    "SUPPORTED_VERSIONS",
    "WIRE_VERSION",
    "Command",
    "Event",
    "Identifier",
    "ItemNumber",
    "Message",
    "NonNegativeInt",
    "Payload",
    "Timestamp",
    "decode_as",
    "encode",
    "ids_of",
    "new_id",
    "utc_now_from",
]

WIRE_VERSION = 1
SUPPORTED_VERSIONS = frozenset({WIRE_VERSION})
# A payload is a handful of fields; refusing big ones keeps a broken or hostile sender from
# making us parse megabytes.
MAX_PAYLOAD_BYTES = 64 * 1024
_MAX_ID_LENGTH = 128
# Counts (seq, outbox, uptime_s) fit a signed 64-bit integer: a PostgreSQL BIGINT, a Java long.
MAX_COUNT = 2**63 - 1
# Item (selection) numbers are MDB's: 16 bits.
MAX_ITEM = 0xFFFF
# Ids are tokens: a control character (NUL above all, which PostgreSQL text cannot hold, or a
# newline that would forge a log line) is never part of one.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
_NO_CONTROL_CHARACTER = r"\A[^\x00-\x1f\x7f]*\Z"
_NO_CONTROL_REASON = "must not contain control characters (U+0000 to U+001F, U+007F)"

Payload: TypeAlias = bytes | bytearray | memoryview | str

# Types as the decoder checks them; the constructors check the same rules in __post_init__.
Identifier = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=_MAX_ID_LENGTH, pattern=_NO_CONTROL_CHARACTER),
]
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
ItemNumber = Annotated[int, msgspec.Meta(ge=0, le=MAX_ITEM)]

M = TypeVar("M", bound="Message")


def new_id() -> str:
    """A fresh unique message id (uuid4, 32 hex digits)."""
    return uuid.uuid4().hex


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """The envelope: ``v``, a unique ``id`` and a timestamp ``ts`` (UTC).

    Subclasses name their topic with ``topic_kind`` and ``topic_name`` and check their own
    fields in ``_validate``; build them with their ``create`` factory, which fills ``id`` and
    ``ts`` from the ``now`` it is given.
    """

    topic_kind: ClassVar[TopicKind]
    topic_name: ClassVar[str | None] = None

    v: int = WIRE_VERSION
    id: Identifier
    ts: Timestamp

    @classmethod
    def wire_name(cls) -> str:
        """``"evt/dispensed"``, ``"status"``: the topic suffix after the machine id."""
        if cls.topic_name is None:
            return str(cls.topic_kind)
        return f"{cls.topic_kind}/{cls.topic_name}"

    def __post_init__(self) -> None:
        # Runs for constructors and, after the type checks, for the decoder too.
        if type(self.v) is not int or self.v not in SUPPORTED_VERSIONS:
            self._fail("v", f"unsupported version {self.v!r}, expected one of {_versions()}")
        self._require_text("id")
        self._require_utc("ts")
        self._validate()

    def _validate(self) -> None:
        """Check the subclass's own fields; override and call super()."""

    def encode(self) -> bytes:
        return encode(self)

    @classmethod
    def decode(cls, payload: Payload) -> Self:
        """Strictly decode ``payload`` as this message type, or raise ``MessageError``."""
        return decode_as(cls, payload)

    # -- helpers for _validate -----------------------------------------------------------------

    def _fail(self, field: str, reason: str) -> NoReturn:
        raise MessageError(self.wire_name(), reason, field)

    def _require_text(self, field: str) -> None:
        if not is_identifier(getattr(self, field)):
            self._fail(
                field,
                f"must be a string of 1 to {_MAX_ID_LENGTH} characters, no control characters",
            )

    def _require_count(self, field: str, maximum: int = MAX_COUNT) -> None:
        problem = count_problem(getattr(self, field), maximum)
        if problem is not None:
            self._fail(field, problem)

    def _require_utc(self, field: str) -> None:
        value = getattr(self, field)
        if not isinstance(value, datetime) or value.utcoffset() is None:
            self._fail(field, "must be a timezone-aware datetime (RFC 3339 with an offset)")
        # Store UTC whatever offset came in, so equal instants encode to the same text.
        if value.tzinfo is not UTC:
            msgspec.structs.force_setattr(self, field, value.astimezone(UTC))


class Command(Message, frozen=True, kw_only=True):
    """A cloud → edge message on ``{prefix}/{machine}/cmd/{name}``."""

    topic_kind: ClassVar[TopicKind] = TopicKind.COMMAND


class Event(Message, frozen=True, kw_only=True):
    """An edge → cloud message on ``{prefix}/{machine}/evt/{name}``, numbered within a boot."""

    topic_kind: ClassVar[TopicKind] = TopicKind.EVENT

    seq: NonNegativeInt

    def _validate(self) -> None:
        super()._validate()
        self._require_count("seq")


def is_identifier(value: object) -> bool:
    """Whether ``value`` is a valid id: 1 to 128 characters, none of them a control character."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= _MAX_ID_LENGTH
        and _CONTROL_CHARACTER.search(value) is None
    )


def count_problem(value: object, maximum: int) -> str | None:
    """What is wrong with ``value`` as an integer of 0..``maximum``, or None."""
    # type() rather than isinstance(): bool is an int subclass, and True is not a count.
    if type(value) is not int or not 0 <= value <= maximum:
        return f"must be an integer from 0 to {maximum}, got {value!r}"
    return None


def _versions() -> str:
    return ", ".join(str(version) for version in sorted(SUPPORTED_VERSIONS))


def utc_now_from(now: datetime, message_type: str) -> datetime:
    """``now`` in UTC, refusing a naive value rather than guessing its zone."""
    if now.utcoffset() is None:
        raise MessageError(message_type, "`now` must be timezone-aware", "ts")
    return now.astimezone(UTC)


# -- encoding and decoding -------------------------------------------------------------------

_encoder = msgspec.json.Encoder()


def encode(message: Message) -> bytes:
    """Compact JSON, fields in declaration order, times in UTC (``...Z``)."""
    return _encoder.encode(message)


class _VersionProbe(msgspec.Struct):
    """Reads only ``v`` (the rest is skipped), so the version is checked before the shape."""

    v: int


_probe_decoder = msgspec.json.Decoder(_VersionProbe)
_decoders: dict[type[Message], msgspec.json.Decoder[Message]] = {}

# msgspec reports "<reason> - at `$.path`" and "Object missing required field `name`".
_AT_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING_FIELD = re.compile(r"missing required field `(?P<field>[^`]+)`")


def _decoder_for(cls: type[M]) -> msgspec.json.Decoder[M]:
    decoder = _decoders.get(cls)
    if decoder is None:
        decoder = _decoders[cls] = msgspec.json.Decoder(cls)
    return decoder  # type: ignore[return-value]  # the dict is keyed by the class it decodes


def _field_and_reason(text: str) -> tuple[str | None, str]:
    """Split a msgspec message into the dotted field path and what is wrong."""
    found = _AT_PATH.match(text)
    assert found is not None  # the pattern matches any text
    reason, path = found["reason"], (found["path"] or "").lstrip(".")
    missing = _MISSING_FIELD.search(reason)
    if missing:
        path = f"{path}.{missing['field']}" if path else missing["field"]
    return path or None, reason


def _as_message_error(cls: type[Message], error: msgspec.MsgspecError) -> MessageError:
    field, reason = _field_and_reason(str(error))
    cause = error.__cause__
    if isinstance(cause, MessageError):
        # Our own __post_init__ named the field; msgspec adds where that struct sits.
        inner = ".".join(part for part in (field, cause.field) if part) or None
        return MessageError(cls.wire_name(), cause.reason, inner)
    if error.__cause__ is not None:  # e.g. a MoneyError from a nested Money
        reason = str(error.__cause__)
    if isinstance(error, msgspec.DecodeError) and not isinstance(error, msgspec.ValidationError):
        reason = f"not valid JSON ({reason})"
    if reason.startswith("Expected `str` matching regex"):
        reason = _NO_CONTROL_REASON  # msgspec would quote the pattern
    return MessageError(cls.wire_name(), reason, field)


def _check_version(cls: type[Message], payload: Payload) -> None:
    try:
        version = _probe_decoder.decode(payload).v
    except msgspec.MsgspecError as error:
        raise _as_message_error(cls, error) from error
    if version not in SUPPORTED_VERSIONS:
        raise MessageError(
            cls.wire_name(), f"unsupported version {version}, expected one of {_versions()}", "v"
        )


class _IdsProbe(msgspec.Struct):
    """Reads only ``id`` and ``vend_id``, whatever their types (checked afterwards)."""

    id: Any = None
    vend_id: Any = None


_ids_decoder = msgspec.json.Decoder(_IdsProbe)


def ids_of(payload: Payload) -> tuple[str | None, str | None]:
    """The ``id`` and ``vend_id`` a payload names, each None unless it is a valid id.

    For a payload that does not decode: its receiver can still acknowledge it by its id (so a
    sender that re-sends until acked stops) and say which vend it was about.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None, None
    try:
        probe = _ids_decoder.decode(payload)
    except msgspec.MsgspecError:
        return None, None
    return (
        probe.id if is_identifier(probe.id) else None,
        probe.vend_id if is_identifier(probe.vend_id) else None,
    )


def decode_as(cls: type[M], payload: Payload) -> M:
    """Strictly decode ``payload`` as ``cls``; any problem raises one ``MessageError``."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageError(cls.wire_name(), f"payload larger than {MAX_PAYLOAD_BYTES} bytes")
    _check_version(cls, payload)
    try:
        return _decoder_for(cls).decode(payload)
    except msgspec.MsgspecError as error:
        raise _as_message_error(cls, error) from error

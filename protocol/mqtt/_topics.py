"""Topics of the vendgate tree as validated value objects, and pure wildcard matching.

Shapes follow aiomqtt's ``Topic``/``Wildcard``: a frozen value that checks itself when built,
``str()`` gives the text to hand to an MQTT client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeGuard

from vendgate.protocol.mqtt._errors import MachineIdError, TopicError

__all__ = [
    "CLOUD_SHARE_GROUP",
    "DEFAULT_PREFIX",
    "MAX_TOPIC_BYTES",
    "ParsedTopic",
    "Topic",
    "TopicFilter",
    "TopicKind",
    "TopicTree",
    "is_valid_machine_id",
    "is_valid_message_name",
    "matches",
    "validate_machine_id",
]

DEFAULT_PREFIX = "vend/v1"
CLOUD_SHARE_GROUP = "cloud"
# MQTT encodes a topic as a length-prefixed UTF-8 string: 2 bytes of length.
MAX_TOPIC_BYTES = 65535

# The machine id is also the MQTT username and client id, and the broker ACL puts it into
# topics (%u), so it must be a plain, short, single topic level.
_MACHINE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MESSAGE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_SHARE = "$share"


class TopicKind(StrEnum):
    """The third level of a vendgate topic: what kind of traffic it carries.

    ``CLOUD`` is the exception: the cloud's own presence, ``{prefix}/cloud``, has no machine
    level (two levels after the prefix are a machine's; one can never clash with them).
    """

    STATUS = "status"
    COMMAND = "cmd"
    EVENT = "evt"
    TELEMETRY = "telemetry"
    CLOUD = "cloud"

    @property
    def has_name(self) -> bool:
        """Commands and events name the message in a fourth level; status and telemetry don't."""
        return self in (TopicKind.COMMAND, TopicKind.EVENT)

    @property
    def qos(self) -> int:
        """The QoS to publish and subscribe with (telemetry may be lost; nothing else may)."""
        return 0 if self is TopicKind.TELEMETRY else 1

    @property
    def retain(self) -> bool:
        """Only presence is retained (a machine's status, the cloud's), so a subscriber learns
        at once whether the other side is up."""
        return self in (TopicKind.STATUS, TopicKind.CLOUD)


def is_valid_machine_id(machine_id: object) -> TypeGuard[str]:
    return isinstance(machine_id, str) and _MACHINE_ID.fullmatch(machine_id) is not None


def validate_machine_id(machine_id: object) -> str:
    """Return ``machine_id`` if it is usable as topic level, username and client id."""
    if not is_valid_machine_id(machine_id):
        raise MachineIdError(f"machine id must match [A-Za-z0-9_-]{{1,64}}, got {machine_id!r}")
    return machine_id


def is_valid_message_name(name: object) -> TypeGuard[str]:
    return isinstance(name, str) and _MESSAGE_NAME.fullmatch(name) is not None


def _validate_message_name(name: object) -> str:
    if not is_valid_message_name(name):
        raise TopicError(f"message name must match [a-z][a-z0-9_]{{0,31}}, got {name!r}")
    return name


def _check_length(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise TopicError(f"{what} must be a str, got {type(text).__name__}")
    if not text:
        raise TopicError(f"{what} must not be empty")
    if "\0" in text:
        raise TopicError(f"{what} must not contain NUL: {text!r}")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TOPIC_BYTES:
        raise TopicError(f"{what} is longer than {MAX_TOPIC_BYTES} bytes")
    return text


def _check_filter_levels(pattern: str, original: str) -> None:
    levels = pattern.split("/")
    for index, level in enumerate(levels):
        if level in ("+", "#"):
            if level == "#" and index != len(levels) - 1:
                raise TopicError(f"'#' must be the last level of a filter: {original!r}")
        elif "+" in level or "#" in level:
            raise TopicError(f"a wildcard must fill a whole level: {original!r}")


def _match_levels(filter_levels: list[str], topic_levels: list[str]) -> bool:
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True  # also matches the parent level itself ("a/#" matches "a")
        if index >= len(topic_levels):
            return False
        if level not in ("+", topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic name one can publish to: no wildcards, not empty, at most 65535 bytes."""

    value: str

    def __post_init__(self) -> None:
        _check_length(self.value, "topic")
        if "+" in self.value or "#" in self.value:
            raise TopicError(f"a topic name cannot contain wildcards: {self.value!r}")

    def __str__(self) -> str:
        return self.value

    def matches(self, topic_filter: TopicFilter | str) -> bool:
        return matches(topic_filter, self)


@dataclass(frozen=True, slots=True)
class TopicFilter:
    """A subscription filter: ``+``/``#`` wildcards allowed, maybe behind ``$share/{group}/``."""

    value: str

    def __post_init__(self) -> None:
        _check_length(self.value, "topic filter")
        if self.value.startswith(_SHARE + "/"):
            group, _, pattern = self.value[len(_SHARE) + 1 :].partition("/")
            if not group or "+" in group or "#" in group:
                raise TopicError(f"bad shared-subscription group in {self.value!r}")
            if not pattern:
                raise TopicError(f"shared subscription without a filter: {self.value!r}")
            _check_filter_levels(pattern, self.value)
        else:
            _check_filter_levels(self.value, self.value)

    def __str__(self) -> str:
        return self.value

    @property
    def share_group(self) -> str | None:
        """The group of a ``$share/{group}/...`` filter, else None."""
        if not self.value.startswith(_SHARE + "/"):
            return None
        return self.value.split("/", 2)[1]

    @property
    def pattern(self) -> str:
        """The filter without its ``$share/{group}/`` prefix: what topics are matched against."""
        if self.share_group is None:
            return self.value
        return self.value.split("/", 2)[2]

    def shared(self, group: str = CLOUD_SHARE_GROUP) -> TopicFilter:
        """The same filter as a shared subscription of ``group`` (replicas split the load)."""
        return TopicFilter(f"{_SHARE}/{group}/{self.pattern}")

    def matches(self, topic: Topic | str) -> bool:
        """Whether a message published on ``topic`` is delivered to this subscription."""
        topic_value = topic.value if isinstance(topic, Topic) else Topic(topic).value
        pattern = self.pattern
        # MQTT 3.1.1 §4.7.2: a filter starting with a wildcard never matches a "$..." topic.
        if topic_value.startswith("$") and pattern[0] in "+#":
            return False
        return _match_levels(pattern.split("/"), topic_value.split("/"))


def matches(topic_filter: TopicFilter | str, topic: Topic | str) -> bool:
    """Pure MQTT matching of ``topic`` against ``topic_filter`` (``+``, ``#``, ``$share``)."""
    if not isinstance(topic_filter, TopicFilter):
        topic_filter = TopicFilter(topic_filter)
    return topic_filter.matches(topic)


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """A vendgate topic taken apart: whose it is, what kind, and which message (if named)."""

    machine_id: str
    kind: TopicKind
    name: str | None = None

    def __post_init__(self) -> None:
        validate_machine_id(self.machine_id)
        if self.kind is TopicKind.CLOUD:
            raise TopicError("the cloud's presence topic has no machine level")
        if self.kind.has_name:
            _validate_message_name(self.name)
        elif self.name is not None:
            raise TopicError(f"{self.kind} topics carry no message name, got {self.name!r}")

    @property
    def kind_name(self) -> str:
        """The wire name of the message kind: ``"evt/dispensed"``, ``"status"``."""
        return f"{self.kind}/{self.name}" if self.name is not None else str(self.kind)


@dataclass(frozen=True, slots=True)
class TopicTree:
    """Builds, parses and filters the topics under one prefix (default ``vend/v1``)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        _check_length(self.prefix, "topic prefix")
        for level in self.prefix.split("/"):
            if not level or "+" in level or "#" in level or level.startswith("$"):
                raise TopicError(
                    f"prefix levels must be non-empty, without wildcards or a leading '$': "
                    f"{self.prefix!r}"
                )

    # -- building topics ---------------------------------------------------------------------

    def build(self, parsed: ParsedTopic) -> Topic:
        """The topic for ``parsed``: the inverse of ``parse``."""
        levels = [self.prefix, parsed.machine_id, str(parsed.kind)]
        if parsed.name is not None:
            levels.append(parsed.name)
        return Topic("/".join(levels))

    def status(self, machine_id: str) -> Topic:
        return self.build(ParsedTopic(machine_id, TopicKind.STATUS))

    def command(self, machine_id: str, name: str) -> Topic:
        return self.build(ParsedTopic(machine_id, TopicKind.COMMAND, name))

    def event(self, machine_id: str, name: str) -> Topic:
        return self.build(ParsedTopic(machine_id, TopicKind.EVENT, name))

    def telemetry(self, machine_id: str) -> Topic:
        return self.build(ParsedTopic(machine_id, TopicKind.TELEMETRY))

    def cloud_presence(self) -> Topic:
        """The cloud's retained presence, ``vend/v1/cloud``: every machine may read it."""
        return Topic(f"{self.prefix}/{TopicKind.CLOUD}")

    def is_cloud_presence(self, topic: Topic | str) -> bool:
        value = topic.value if isinstance(topic, Topic) else topic
        return value == self.cloud_presence().value

    # -- subscription filters ----------------------------------------------------------------

    def _any_machine(self, suffix: str, share_group: str | None) -> TopicFilter:
        topic_filter = TopicFilter(f"{self.prefix}/+/{suffix}")
        return topic_filter if share_group is None else topic_filter.shared(share_group)

    def events_filter(self, share_group: str | None = None) -> TopicFilter:
        """Every machine's events: ``vend/v1/+/evt/+`` (or ``$share/{group}/...``)."""
        return self._any_machine(f"{TopicKind.EVENT}/+", share_group)

    def status_filter(self, share_group: str | None = None) -> TopicFilter:
        """Every machine's status: ``vend/v1/+/status``."""
        return self._any_machine(str(TopicKind.STATUS), share_group)

    def telemetry_filter(self, share_group: str | None = None) -> TopicFilter:
        """Every machine's telemetry: ``vend/v1/+/telemetry``."""
        return self._any_machine(str(TopicKind.TELEMETRY), share_group)

    def pong_filter(self) -> TopicFilter:
        """Every machine's ``evt/pong``, plainly: the replica that pinged waits for the answer,
        and a shared subscription could hand it to another replica."""
        return self._any_machine(f"{TopicKind.EVENT}/pong", None)

    def cloud_filters(self, share_group: str | None = None) -> tuple[TopicFilter, ...]:
        """What a cloud replica subscribes to; pass a group (``"cloud"``) on brokers with $share.

        The retained status is best taken by every replica; a shared status subscription
        still works but each replica then sees only some machines' status.
        """
        return (
            self.events_filter(share_group),
            self.status_filter(share_group),
            self.telemetry_filter(share_group),
        )

    def edge_filter(self, machine_id: str) -> TopicFilter:
        """The commands of ``machine_id``: ``vend/v1/{m}/cmd/+``."""
        validate_machine_id(machine_id)
        return TopicFilter(f"{self.prefix}/{machine_id}/{TopicKind.COMMAND}/+")

    def edge_filters(self, machine_id: str) -> tuple[TopicFilter, ...]:
        """What the edge of ``machine_id`` subscribes to: its commands and the cloud's presence."""
        return (self.edge_filter(machine_id), TopicFilter(self.cloud_presence().value))

    # -- parsing -----------------------------------------------------------------------------

    def parse(self, topic: Topic | str) -> ParsedTopic:
        """Take a received topic apart; raise ``TopicError`` if it is not one of this tree's."""
        value = topic.value if isinstance(topic, Topic) else Topic(topic).value
        head = self.prefix + "/"
        if not value.startswith(head):
            raise TopicError(f"topic {value!r} is not under {self.prefix!r}")
        levels = value[len(head) :].split("/")
        if len(levels) < 2:
            raise TopicError(f"topic {value!r} names no message kind")
        machine_id, kind_text, *rest = levels
        try:
            kind = TopicKind(kind_text)
        except ValueError:
            raise TopicError(f"topic {value!r} has an unknown kind {kind_text!r}") from None
        if kind is TopicKind.CLOUD:
            raise TopicError(f"topic {value!r} is not a machine's: the cloud's has no machine")
        expected_levels = 3 if kind.has_name else 2
        if len(levels) != expected_levels:
            raise TopicError(f"topic {value!r} has the wrong number of levels for {kind}")
        return ParsedTopic(validate_machine_id(machine_id), kind, rest[0] if rest else None)

"""The messages of wire format v1, one frozen msgspec Struct per topic suffix.

Every class has a ``create`` factory taking ``now`` (aware) and filling ``id`` and ``ts``;
the core never reads a clock. Field order here is the order on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

import msgspec

from vendgate.protocol._money import MAX_WIRE_VALUE, Money, MoneyError
from vendgate.protocol.mqtt._envelope import (
    MAX_ITEM,
    Command,
    Event,
    Identifier,
    ItemNumber,
    Message,
    NonNegativeInt,
    Timestamp,
    count_problem,
    is_identifier,
    new_id,
    utc_now_from,
)
from vendgate.protocol.mqtt._errors import MessageError
from vendgate.protocol.mqtt._topics import TopicKind

__all__ = [
    "Ack",
    "Authorized",
    "Cancel",
    "CloudPresence",
    "Config",
    "Dispensed",
    "DispensedItem",
    "EndReason",
    "Ended",
    "Hello",
    "Ping",
    "Pong",
    "RejectReason",
    "Rejected",
    "Started",
    "Status",
    "StatusState",
    "Telemetry",
]


class StatusState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class RejectReason(StrEnum):
    BUSY = "busy"
    EXPIRED = "expired"
    BOARD_DOWN = "board_down"
    DUPLICATE = "duplicate"
    INVALID = "invalid"


class EndReason(StrEnum):
    """Why a session ended: the VMC closed it (``completed``, also when the customer pressed
    cancel on the keypad), the reader's selection timeout, the agent cancelled it
    (``cmd/cancel``), a RESET from the VMC (or the agent restarted), or the board went silent.
    The reader's ``SessionEnded`` and the wire's ``evt/ended`` carry the same value."""

    COMPLETED = "completed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    BOARD_RESET = "board_reset"
    LINK_LOST = "link_lost"


def _envelope(cls: type[Message], now: datetime, message_id: str | None) -> dict[str, Any]:
    return {
        "id": new_id() if message_id is None else message_id,
        "ts": utc_now_from(now, cls.wire_name()),
    }


def _require_member(message: Message, field: str, enum: type[StrEnum]) -> None:
    """Accept the plain string too, but store the enum member."""
    value = getattr(message, field)
    try:
        member = enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise MessageError(
            message.wire_name(), f"must be one of {allowed}, got {value!r}", field
        ) from None
    msgspec.structs.force_setattr(message, field, member)


def _require_money(message: Message, field: str) -> None:
    _check_money(message.wire_name(), getattr(message, field), field)


def _check_money(wire_name: str, value: object, field: str) -> None:
    if not isinstance(value, Money):
        raise MessageError(wire_name, "must be a Money", field)
    # Money itself may grow past the wire's bound (sums); a message may not carry that.
    if value.value > MAX_WIRE_VALUE:
        raise MessageError(
            wire_name,
            f"must be at most {MAX_WIRE_VALUE} minor units, got {value.value}",
            f"{field}.value",
        )


# -- status and telemetry ----------------------------------------------------------------------


class Status(Message, frozen=True, kw_only=True):
    """Retained on ``status``: ``online`` when connected, ``offline`` as the last will.

    ``seq`` (optional, added in v1) orders the statuses of one boot: connection k says
    ``online`` with 2k and leaves a will ``offline`` with 2k+1, so the will of the connection
    that died wins over its ``online`` whatever the two timestamps say.
    """

    topic_kind: ClassVar[TopicKind] = TopicKind.STATUS

    state: StatusState
    boot_id: Identifier
    versions: dict[str, str]
    seq: NonNegativeInt | None = None

    def _validate(self) -> None:
        super()._validate()
        _require_member(self, "state", StatusState)
        self._require_text("boot_id")
        if self.seq is not None:
            self._require_count("seq")

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        state: StatusState,
        boot_id: str,
        versions: dict[str, str],
        seq: int | None = None,
        message_id: str | None = None,
    ) -> Status:
        return cls(
            **_envelope(cls, now, message_id),
            state=state,
            boot_id=boot_id,
            versions=versions,
            seq=seq,
        )


class Telemetry(Message, frozen=True, kw_only=True):
    """A heartbeat. Free-form figures go into ``extra`` (top-level unknown keys are ignored)."""

    topic_kind: ClassVar[TopicKind] = TopicKind.TELEMETRY

    uptime_s: NonNegativeInt
    board: Identifier
    outbox: NonNegativeInt
    extra: dict[str, Any] = msgspec.field(default_factory=dict)

    def _validate(self) -> None:
        super()._validate()
        self._require_count("uptime_s")
        self._require_text("board")
        self._require_count("outbox")

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        uptime_s: int,
        board: str,
        outbox: int,
        extra: dict[str, Any] | None = None,
        message_id: str | None = None,
    ) -> Telemetry:
        return cls(
            **_envelope(cls, now, message_id),
            uptime_s=uptime_s,
            board=board,
            outbox=outbox,
            extra={} if extra is None else extra,
        )


class CloudPresence(Message, frozen=True, kw_only=True):
    """Retained on ``{prefix}/cloud``: a cloud replica connected (``online``) or vanished (its
    last will, ``offline``). An ``online`` tells every machine to re-send its unacked events."""

    topic_kind: ClassVar[TopicKind] = TopicKind.CLOUD

    state: StatusState
    replica: Identifier  # the replica's MQTT client id

    def _validate(self) -> None:
        super()._validate()
        _require_member(self, "state", StatusState)
        self._require_text("replica")

    @classmethod
    def create(
        cls, *, now: datetime, state: StatusState, replica: str, message_id: str | None = None
    ) -> CloudPresence:
        return cls(**_envelope(cls, now, message_id), state=state, replica=replica)


# -- commands (cloud -> edge) ------------------------------------------------------------------


class Authorized(Command, frozen=True, kw_only=True):
    """The customer approved ``amount``: open a vend session with it until ``expires_at``."""

    topic_name: ClassVar[str | None] = "authorized"

    vend_id: Identifier
    amount: Money
    expires_at: Timestamp

    def _validate(self) -> None:
        super()._validate()
        self._require_text("vend_id")
        _require_money(self, "amount")
        self._require_utc("expires_at")

    def is_expired(self, now: datetime) -> bool:
        """True from ``expires_at`` on; the edge ignores an expired authorization."""
        return utc_now_from(now, self.wire_name()) >= self.expires_at

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        vend_id: str,
        amount: Money,
        expires_at: datetime,
        message_id: str | None = None,
    ) -> Authorized:
        return cls(
            **_envelope(cls, now, message_id), vend_id=vend_id, amount=amount, expires_at=expires_at
        )


class Cancel(Command, frozen=True, kw_only=True):
    """End the vend session ``vend_id`` (customer gave up, payment aborted)."""

    topic_name: ClassVar[str | None] = "cancel"

    vend_id: Identifier

    def _validate(self) -> None:
        super()._validate()
        self._require_text("vend_id")

    @classmethod
    def create(cls, *, now: datetime, vend_id: str, message_id: str | None = None) -> Cancel:
        return cls(**_envelope(cls, now, message_id), vend_id=vend_id)


class Ack(Command, frozen=True, kw_only=True):
    """The cloud committed these event ids: the edge may drop them from its outbox."""

    topic_name: ClassVar[str | None] = "ack"

    events: tuple[Identifier, ...]

    def _validate(self) -> None:
        super()._validate()
        for index, event_id in enumerate(self.events):
            if not is_identifier(event_id):
                self._fail(f"events[{index}]", "must be a valid id")

    @classmethod
    def create(cls, *, now: datetime, events: Iterable[str], message_id: str | None = None) -> Ack:
        return cls(**_envelope(cls, now, message_id), events=tuple(events))


class Config(Command, frozen=True, kw_only=True):
    """Settings changes for the edge, e.g. ``{"selection_timeout_s": 30}``."""

    topic_name: ClassVar[str | None] = "config"

    settings: dict[str, Any]

    @classmethod
    def create(
        cls, *, now: datetime, settings: dict[str, Any], message_id: str | None = None
    ) -> Config:
        return cls(**_envelope(cls, now, message_id), settings=settings)


class Ping(Command, frozen=True, kw_only=True):
    """Can you sell right now? Answer at once with ``evt/pong``; ignore it from ``expires_at``."""

    topic_name: ClassVar[str | None] = "ping"

    expires_at: Timestamp

    def _validate(self) -> None:
        super()._validate()
        self._require_utc("expires_at")

    def is_expired(self, now: datetime) -> bool:
        return utc_now_from(now, self.wire_name()) >= self.expires_at

    @classmethod
    def create(cls, *, now: datetime, expires_at: datetime, message_id: str | None = None) -> Ping:
        return cls(**_envelope(cls, now, message_id), expires_at=expires_at)


# -- events (edge -> cloud) --------------------------------------------------------------------


class Pong(Message, frozen=True, kw_only=True):
    """The answer to ``cmd/ping`` ``ping_id``: the board's state and whether a vend could start.

    On an ``evt/`` topic but not an ``Event``: it is never stored, acked or re-sent (a late
    answer is worth nothing), so it carries no ``seq``.
    """

    topic_kind: ClassVar[TopicKind] = TopicKind.EVENT
    topic_name: ClassVar[str | None] = "pong"

    ping_id: Identifier
    boot_id: Identifier
    board: Identifier
    can_vend: bool
    open_vends: tuple[Identifier, ...]

    def _validate(self) -> None:
        super()._validate()
        self._require_text("ping_id")
        self._require_text("boot_id")
        self._require_text("board")
        if type(self.can_vend) is not bool:
            self._fail("can_vend", f"must be true or false, got {self.can_vend!r}")
        for index, vend_id in enumerate(self.open_vends):
            if not isinstance(vend_id, str) or not vend_id:
                self._fail(f"open_vends[{index}]", "must be a non-empty string")

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        ping_id: str,
        boot_id: str,
        board: str,
        can_vend: bool,
        open_vends: Iterable[str],
        message_id: str | None = None,
    ) -> Pong:
        return cls(
            **_envelope(cls, now, message_id),
            ping_id=ping_id,
            boot_id=boot_id,
            board=board,
            can_vend=can_vend,
            open_vends=tuple(open_vends),
        )


class Started(Event, frozen=True, kw_only=True):
    """The vend board opened a session with ``funds`` of credit."""

    topic_name: ClassVar[str | None] = "started"

    vend_id: Identifier
    funds: Money

    def _validate(self) -> None:
        super()._validate()
        self._require_text("vend_id")
        _require_money(self, "funds")

    @classmethod
    def create(
        cls, *, now: datetime, seq: int, vend_id: str, funds: Money, message_id: str | None = None
    ) -> Started:
        return cls(**_envelope(cls, now, message_id), seq=seq, vend_id=vend_id, funds=funds)


class Rejected(Event, frozen=True, kw_only=True):
    """The edge refused the authorization ``vend_id`` and will not vend for it."""

    topic_name: ClassVar[str | None] = "rejected"

    vend_id: Identifier
    reason: RejectReason

    def _validate(self) -> None:
        super()._validate()
        self._require_text("vend_id")
        _require_member(self, "reason", RejectReason)

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        seq: int,
        vend_id: str,
        reason: RejectReason,
        message_id: str | None = None,
    ) -> Rejected:
        return cls(**_envelope(cls, now, message_id), seq=seq, vend_id=vend_id, reason=reason)


class DispensedItem(msgspec.Struct, frozen=True, kw_only=True):
    """One vend attempt inside a session, as listed in ``ended``.

    ``price`` is what the edge charged (approved); ``vmc_price`` what the VMC asked, if known.
    """

    item: ItemNumber
    price: Money
    success: bool
    vmc_price: Money | None = None

    def __post_init__(self) -> None:
        problem = count_problem(self.item, MAX_ITEM)
        if problem is not None:
            raise MessageError("evt/ended", problem, "item")
        _check_money("evt/ended", self.price, "price")
        if self.vmc_price is not None:
            _check_money("evt/ended", self.vmc_price, "vmc_price")


class Dispensed(Event, frozen=True, kw_only=True):
    """The board reported VEND SUCCESS (``success``) or VEND FAILURE for ``item`` at ``price``
    (what the edge charged); ``vmc_price`` is what the VMC asked, if known."""

    topic_name: ClassVar[str | None] = "dispensed"

    vend_id: Identifier
    item: ItemNumber
    price: Money
    success: bool
    vmc_price: Money | None = None

    def _validate(self) -> None:
        super()._validate()
        self._require_text("vend_id")
        self._require_count("item", MAX_ITEM)
        _require_money(self, "price")
        if self.vmc_price is not None:
            _require_money(self, "vmc_price")

    def as_item(self) -> DispensedItem:
        """This attempt as a line of the ``ended`` event."""
        return DispensedItem(
            item=self.item, price=self.price, success=self.success, vmc_price=self.vmc_price
        )

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        seq: int,
        vend_id: str,
        item: int,
        price: Money,
        success: bool,
        message_id: str | None = None,
        vmc_price: Money | None = None,
    ) -> Dispensed:
        return cls(
            **_envelope(cls, now, message_id),
            seq=seq,
            vend_id=vend_id,
            item=item,
            price=price,
            success=success,
            vmc_price=vmc_price,
        )


class Ended(Event, frozen=True, kw_only=True):
    """The session is over: every attempt, and ``total``, the sum of successful prices."""

    topic_name: ClassVar[str | None] = "ended"

    vend_id: Identifier
    reason: EndReason
    dispensed: tuple[DispensedItem, ...]
    total: Money

    def _validate(self) -> None:
        super()._validate()
        self._require_text("vend_id")
        _require_member(self, "reason", EndReason)
        _require_money(self, "total")

    def check_total(self) -> Money:
        """Return ``total`` if it equals the sum of successful prices, all in one currency.

        Not enforced by the decoder: a receiver decides what to do with an inconsistent
        report (the cloud trusts the itemised lines and logs the mismatch).
        """
        for index, line in enumerate(self.dispensed):
            if line.price.currency != self.total.currency:
                self._fail(
                    f"dispensed[{index}].price",
                    f"currency {line.price.currency} differs from total's {self.total.currency}",
                )
        expected = _successful_total(self.dispensed, self.total.currency)
        if expected != self.total:
            self._fail(
                "total", f"is {self.total.format()}, successful items sum to {expected.format()}"
            )
        return self.total

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        seq: int,
        vend_id: str,
        reason: EndReason,
        dispensed: Iterable[DispensedItem],
        currency: str,
        message_id: str | None = None,
    ) -> Ended:
        """Build the event with ``total`` computed from the successful lines."""
        lines = tuple(dispensed)
        try:
            total = _successful_total(lines, currency)
        except MoneyError as error:
            raise MessageError(cls.wire_name(), str(error), "dispensed") from error
        return cls(
            **_envelope(cls, now, message_id),
            seq=seq,
            vend_id=vend_id,
            reason=reason,
            dispensed=lines,
            total=total,
        )


def _successful_total(lines: Iterable[DispensedItem], currency: str) -> Money:
    return Money.total((line.price for line in lines if line.success), currency)


class Hello(Event, frozen=True, kw_only=True):
    """Sent on every connect: the sessions the edge still has open and its outbox size."""

    topic_name: ClassVar[str | None] = "hello"

    boot_id: Identifier
    open_vends: tuple[Identifier, ...]
    outbox: NonNegativeInt

    def _validate(self) -> None:
        super()._validate()
        self._require_text("boot_id")
        self._require_count("outbox")
        for index, vend_id in enumerate(self.open_vends):
            if not is_identifier(vend_id):
                self._fail(f"open_vends[{index}]", "must be a valid id")

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        seq: int,
        boot_id: str,
        open_vends: Iterable[str],
        outbox: int,
        message_id: str | None = None,
    ) -> Hello:
        return cls(
            **_envelope(cls, now, message_id),
            seq=seq,
            boot_id=boot_id,
            open_vends=tuple(open_vends),
            outbox=outbox,
        )

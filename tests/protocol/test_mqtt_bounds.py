"""Every integer on the wire is bounded, and ids carry no control characters.

Counts fit a signed 64-bit integer, item numbers MDB's 16 bits, money a signed 32-bit amount
of minor units. The decoder refuses anything else with a ``MessageError`` naming the field,
and the constructors refuse the same values with the same field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vendgate.protocol import Money
from vendgate.protocol.mqtt import (
    MAX_COUNT,
    MAX_ITEM,
    MAX_PAYLOAD_BYTES,
    MAX_WIRE_VALUE,
    Ack,
    Authorized,
    Cancel,
    Dispensed,
    DispensedItem,
    Ended,
    EndReason,
    Hello,
    Message,
    MessageError,
    Started,
    Telemetry,
    decode,
    ids_of,
)

TS = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOK = "NOK"
LINE = DispensedItem(item=12, price=Money(2500, NOK), success=True)

# One valid message of each type that carries an integer.
BASE: dict[str, Message] = {
    "telemetry": Telemetry.create(now=TS, uptime_s=3600, board="enabled", outbox=0),
    "cmd/authorized": Authorized.create(
        now=TS, vend_id="vs_1", amount=Money(3500, NOK), expires_at=TS + timedelta(minutes=2)
    ),
    "evt/started": Started.create(now=TS, seq=1, vend_id="vs_1", funds=Money(3500, NOK)),
    "evt/dispensed": Dispensed.create(
        now=TS, seq=2, vend_id="vs_1", item=12, price=Money(2500, NOK), success=True
    ),
    "evt/ended": Ended.create(
        now=TS, seq=3, vend_id="vs_1", reason=EndReason.COMPLETED, dispensed=[LINE], currency=NOK
    ),
    "evt/hello": Hello.create(now=TS, seq=0, boot_id="b", open_vends=["vs_1"], outbox=2),
}

# (message type, JSON path of an integer, its largest value)
BOUNDED: list[tuple[str, tuple[str | int, ...], int]] = [
    ("telemetry", ("uptime_s",), MAX_COUNT),
    ("telemetry", ("outbox",), MAX_COUNT),
    ("evt/started", ("seq",), MAX_COUNT),
    ("evt/dispensed", ("seq",), MAX_COUNT),
    ("evt/ended", ("seq",), MAX_COUNT),
    ("evt/hello", ("seq",), MAX_COUNT),
    ("evt/hello", ("outbox",), MAX_COUNT),
    ("evt/dispensed", ("item",), MAX_ITEM),
    ("evt/ended", ("dispensed", 0, "item"), MAX_ITEM),
    ("cmd/authorized", ("amount", "value"), MAX_WIRE_VALUE),
    ("evt/started", ("funds", "value"), MAX_WIRE_VALUE),
    ("evt/dispensed", ("price", "value"), MAX_WIRE_VALUE),
    ("evt/ended", ("total", "value"), MAX_WIRE_VALUE),
    ("evt/ended", ("dispensed", 0, "price", "value"), MAX_WIRE_VALUE),
]


def dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def with_value(wire_name: str, path: tuple[str | int, ...], value: object) -> bytes:
    obj: Any = json.loads(BASE[wire_name].encode())
    target = obj
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return json.dumps(obj).encode()


def read_path(message: Message, path: tuple[str | int, ...]) -> object:
    value: Any = message
    for part in path:
        value = value[part] if isinstance(part, int) else getattr(value, part)
    return value


def refused_field(wire_name: str, payload: bytes) -> str | None:
    with pytest.raises(MessageError) as caught:
        decode(wire_name, payload)
    assert caught.value.message_type == wire_name
    return caught.value.field


bounded = pytest.mark.parametrize(
    ("wire_name", "path", "maximum"),
    BOUNDED,
    ids=[f"{name}:{dotted(path)}" for name, path, _ in BOUNDED],
)


# -- the decoder -------------------------------------------------------------------------------


@bounded
@given(data=st.data())
def test_values_within_the_bound_round_trip(
    wire_name: str, path: tuple[str | int, ...], maximum: int, data: st.DataObject
) -> None:
    value = data.draw(st.integers(min_value=0, max_value=maximum))
    message = decode(wire_name, with_value(wire_name, path, value))
    assert read_path(message, path) == value
    assert decode(wire_name, message.encode()) == message


@bounded
@given(data=st.data())
def test_values_past_the_bound_are_refused_naming_the_field(
    wire_name: str, path: tuple[str | int, ...], maximum: int, data: st.DataObject
) -> None:
    value = data.draw(st.integers(min_value=maximum + 1) | st.integers(max_value=-1))
    assert refused_field(wire_name, with_value(wire_name, path, value)) == dotted(path)


@bounded
@given(data=st.data())
def test_floats_and_bools_are_not_integers(
    wire_name: str, path: tuple[str | int, ...], maximum: int, data: st.DataObject
) -> None:
    # 12.0 and 1e30 are floats on the wire, true is a bool: none of them is an integer.
    value = data.draw(st.floats(allow_nan=False, allow_infinity=False) | st.booleans())
    assert refused_field(wire_name, with_value(wire_name, path, value)) == dotted(path)


@bounded
def test_the_bound_itself_is_accepted_and_one_more_refused(
    wire_name: str, path: tuple[str | int, ...], maximum: int
) -> None:
    message = decode(wire_name, with_value(wire_name, path, maximum))
    assert read_path(message, path) == maximum
    assert refused_field(wire_name, with_value(wire_name, path, maximum + 1)) == dotted(path)


def test_the_bounds_are_those_of_the_contract() -> None:
    assert (MAX_WIRE_VALUE, MAX_ITEM, MAX_COUNT) == (2**31 - 1, 65535, 2**63 - 1)


def test_the_poison_of_issue_9_is_refused() -> None:
    payload = with_value("evt/dispensed", ("price", "value"), 10**30)
    with pytest.raises(MessageError, match=r"field `price.value`"):
        decode("evt/dispensed", payload)


# -- the constructors --------------------------------------------------------------------------

# (message type, field as the decoder names it, build with that integer)
Build = Callable[[int], object]
CONSTRUCTED: list[tuple[str, str, int, Build]] = [
    (
        "telemetry",
        "uptime_s",
        MAX_COUNT,
        lambda v: Telemetry.create(now=TS, uptime_s=v, board="b", outbox=0),
    ),
    (
        "telemetry",
        "outbox",
        MAX_COUNT,
        lambda v: Telemetry.create(now=TS, uptime_s=0, board="b", outbox=v),
    ),
    (
        "evt/started",
        "seq",
        MAX_COUNT,
        lambda v: Started.create(now=TS, seq=v, vend_id="v", funds=Money(1, NOK)),
    ),
    (
        "evt/hello",
        "outbox",
        MAX_COUNT,
        lambda v: Hello.create(now=TS, seq=0, boot_id="b", open_vends=[], outbox=v),
    ),
    (
        "evt/dispensed",
        "item",
        MAX_ITEM,
        lambda v: Dispensed.create(
            now=TS, seq=0, vend_id="v", item=v, price=Money(1, NOK), success=True
        ),
    ),
    # A line of `ended` is built on its own: its field is named within the line.
    (
        "evt/ended",
        "item",
        MAX_ITEM,
        lambda v: DispensedItem(item=v, price=LINE.price, success=True),
    ),
    (
        "evt/ended",
        "price.value",
        MAX_WIRE_VALUE,
        lambda v: DispensedItem(item=1, price=Money(v, NOK), success=True),
    ),
    (
        "cmd/authorized",
        "amount.value",
        MAX_WIRE_VALUE,
        lambda v: Authorized.create(now=TS, vend_id="v", amount=Money(v, NOK), expires_at=TS),
    ),
    (
        "evt/started",
        "funds.value",
        MAX_WIRE_VALUE,
        lambda v: Started.create(now=TS, seq=0, vend_id="v", funds=Money(v, NOK)),
    ),
    (
        "evt/dispensed",
        "price.value",
        MAX_WIRE_VALUE,
        lambda v: Dispensed.create(
            now=TS, seq=0, vend_id="v", item=1, price=Money(v, NOK), success=True
        ),
    ),
]
constructed = pytest.mark.parametrize(
    ("wire_name", "field", "maximum", "build"),
    CONSTRUCTED,
    ids=[f"{name}:{field}" for name, field, _, _ in CONSTRUCTED],
)


@constructed
@given(data=st.data())
def test_constructors_refuse_what_the_decoder_refuses(
    wire_name: str, field: str, maximum: int, build: Build, data: st.DataObject
) -> None:
    value = data.draw(st.integers(min_value=maximum + 1))
    with pytest.raises(MessageError) as caught:
        build(value)
    assert (caught.value.message_type, caught.value.field) == (wire_name, field)


@constructed
def test_constructors_take_the_bound_itself(
    wire_name: str, field: str, maximum: int, build: Build
) -> None:
    build(maximum)


@pytest.mark.parametrize("value", [True, False, 1.0, -1])
def test_constructors_refuse_bools_floats_and_negative_counts(value: Any) -> None:
    with pytest.raises(MessageError) as caught:
        Telemetry.create(now=TS, uptime_s=value, board="b", outbox=0)
    assert caught.value.field == "uptime_s"
    with pytest.raises(MessageError) as caught:
        DispensedItem(item=value, price=LINE.price, success=True)
    assert caught.value.field == "item"


@given(st.integers(min_value=MAX_WIRE_VALUE + 1, max_value=2 * MAX_WIRE_VALUE))
def test_ended_refuses_lines_whose_total_passes_the_bound(total: int) -> None:
    lines = [
        DispensedItem(item=1, price=Money(MAX_WIRE_VALUE, NOK), success=True),
        DispensedItem(item=2, price=Money(total - MAX_WIRE_VALUE, NOK), success=True),
    ]
    with pytest.raises(MessageError) as caught:
        Ended.create(
            now=TS, seq=0, vend_id="v", reason=EndReason.COMPLETED, dispensed=lines, currency=NOK
        )
    assert caught.value.field == "total.value"


# -- ids ---------------------------------------------------------------------------------------

CONTROL = ["\x00", "\n", "\r", "\t", "\x1b", "\x7f"]


@pytest.mark.parametrize("character", CONTROL)
@pytest.mark.parametrize("field", ["id", "vend_id"])
def test_ids_with_control_characters_are_refused(field: str, character: str) -> None:
    payload = with_value("evt/dispensed", (field,), f"e{character}1")
    assert refused_field("evt/dispensed", payload) == field
    with pytest.raises(MessageError) as caught:
        Cancel.create(now=TS, vend_id=f"v{character}", message_id="ok")
    assert caught.value.field == "vend_id"
    with pytest.raises(MessageError) as caught:
        Ack.create(now=TS, events=["ok", f"e{character}"])
    assert caught.value.field == "events[1]"


@pytest.mark.parametrize("message_id", ["é-1", "kø-ø", "🙂", "\x85", "a b", "x" * 128])
def test_ids_of_printable_characters_are_accepted(message_id: str) -> None:
    payload = with_value("evt/dispensed", ("id",), message_id)
    assert decode("evt/dispensed", payload).id == message_id


# -- salvaging the ids of a payload that does not decode ---------------------------------------


def test_ids_of_a_refused_payload_are_still_read() -> None:
    payload = with_value("evt/dispensed", ("price", "value"), 10**30)
    assert ids_of(payload) == (BASE["evt/dispensed"].id, "vs_1")


@pytest.mark.parametrize(
    ("payload", "ids"),
    [
        (b'{"id": "e1"}', ("e1", None)),
        (b'{"id": "e1", "vend_id": 7}', ("e1", None)),
        (b'{"vend_id": "vs_1", "id": ["e1"]}', (None, "vs_1")),
        (b'{"id": ""}', (None, None)),
        (b'{"id": "e\\u00001"}', (None, None)),
        (json.dumps({"id": "x" * 129}).encode(), (None, None)),
        (b'{"id": 12}', (None, None)),
        (b"not json", (None, None)),
        (b'["e1"]', (None, None)),
        (b'{"id": "e1"', (None, None)),
        ('{"id": "e1"}', ("e1", None)),
    ],
)
def test_ids_of(payload: bytes | str, ids: tuple[str | None, str | None]) -> None:
    assert ids_of(payload) == ids


def test_ids_of_an_oversized_payload_are_not_looked_for() -> None:
    payload = json.dumps({"id": "e1", "padding": "x" * MAX_PAYLOAD_BYTES}).encode()
    assert ids_of(payload) == (None, None)

"""Wire format v1: every message round-trips, matches its golden JSON, and bad payloads fail."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vendgate.protocol import Money
from vendgate.protocol.mqtt import (
    MAX_COUNT,
    MAX_ITEM,
    MAX_PAYLOAD_BYTES,
    MAX_WIRE_VALUE,
    MESSAGE_TYPES,
    Ack,
    Authorized,
    Cancel,
    CloudPresence,
    Config,
    Dispensed,
    DispensedItem,
    Ended,
    EndReason,
    Event,
    Hello,
    Message,
    MessageError,
    ParsedTopic,
    Ping,
    Pong,
    Rejected,
    RejectReason,
    Started,
    Status,
    StatusState,
    Telemetry,
    TopicKind,
    TopicTree,
    decode,
    decode_for_topic,
    encode,
    message_type,
)

TS = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOK = "NOK"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "mqtt-contract.md"


def _compact(text: str) -> bytes:
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False).encode()


# -- golden examples: the exact bytes, and the message they are --------------------------------

GOLDEN: dict[str, tuple[str, Message]] = {
    "status": (
        '{"v":1,"id":"5f0c6f8e2b9d4a1c8e7f6a5b4c3d2e1f","ts":"2024-05-01T12:00:00Z",'
        '"state":"online","boot_id":"b-7f3a","versions":{"agent":"0.1.0","board":"sim-1.0"},'
        '"seq":2}',
        Status(
            id="5f0c6f8e2b9d4a1c8e7f6a5b4c3d2e1f",
            ts=TS,
            state=StatusState.ONLINE,
            boot_id="b-7f3a",
            versions={"agent": "0.1.0", "board": "sim-1.0"},
            seq=2,
        ),
    ),
    "telemetry": (
        '{"v":1,"id":"1a2b3c4d5e6f47808f9e8d7c6b5a4932","ts":"2024-05-01T12:00:00Z",'
        '"uptime_s":3600,"board":"enabled","outbox":0,"extra":{"temperature_c":6.5}}',
        Telemetry(
            id="1a2b3c4d5e6f47808f9e8d7c6b5a4932",
            ts=TS,
            uptime_s=3600,
            board="enabled",
            outbox=0,
            extra={"temperature_c": 6.5},
        ),
    ),
    "cmd/authorized": (
        '{"v":1,"id":"9c8b7a6f5e4d43c2b1a0f9e8d7c6b5a4","ts":"2024-05-01T12:00:00Z",'
        '"vend_id":"vs_01HX","amount":{"value":3500,"currency":"NOK"},'
        '"expires_at":"2024-05-01T12:02:00Z"}',
        Authorized(
            id="9c8b7a6f5e4d43c2b1a0f9e8d7c6b5a4",
            ts=TS,
            vend_id="vs_01HX",
            amount=Money(3500, NOK),
            expires_at=TS + timedelta(minutes=2),
        ),
    ),
    "cmd/cancel": (
        '{"v":1,"id":"2b3c4d5e6f7a48b99aabbccddeeff001","ts":"2024-05-01T12:00:00Z",'
        '"vend_id":"vs_01HX"}',
        Cancel(id="2b3c4d5e6f7a48b99aabbccddeeff001", ts=TS, vend_id="vs_01HX"),
    ),
    "cmd/ack": (
        '{"v":1,"id":"3c4d5e6f7a8b49c0a1b2c3d4e5f60718","ts":"2024-05-01T12:00:00Z",'
        '"events":["e1","e2"]}',
        Ack(id="3c4d5e6f7a8b49c0a1b2c3d4e5f60718", ts=TS, events=("e1", "e2")),
    ),
    "cmd/config": (
        '{"v":1,"id":"4d5e6f7a8b9c40d1b2c3d4e5f6a7b8c9","ts":"2024-05-01T12:00:00Z",'
        '"settings":{"planogram":[{"item":11,"price":2500},{"item":12,"price":3500}],'
        '"price_mode":"planogram"}}',
        Config(
            id="4d5e6f7a8b9c40d1b2c3d4e5f6a7b8c9",
            ts=TS,
            settings={
                "planogram": [{"item": 11, "price": 2500}, {"item": 12, "price": 3500}],
                "price_mode": "planogram",
            },
        ),
    ),
    "evt/started": (
        '{"v":1,"id":"e0","ts":"2024-05-01T12:00:00Z","seq":1,"vend_id":"vs_01HX",'
        '"funds":{"value":3500,"currency":"NOK"}}',
        Started(id="e0", ts=TS, seq=1, vend_id="vs_01HX", funds=Money(3500, NOK)),
    ),
    "evt/rejected": (
        '{"v":1,"id":"e1","ts":"2024-05-01T12:00:00Z","seq":1,"vend_id":"vs_01HX","reason":"busy"}',
        Rejected(id="e1", ts=TS, seq=1, vend_id="vs_01HX", reason=RejectReason.BUSY),
    ),
    "evt/dispensed": (
        '{"v":1,"id":"e2","ts":"2024-05-01T12:00:00Z","seq":2,"vend_id":"vs_01HX",'
        '"item":12,"price":{"value":2500,"currency":"NOK"},"success":true,'
        '"vmc_price":{"value":3500,"currency":"NOK"}}',
        Dispensed(
            id="e2",
            ts=TS,
            seq=2,
            vend_id="vs_01HX",
            item=12,
            price=Money(2500, NOK),
            success=True,
            vmc_price=Money(3500, NOK),
        ),
    ),
    "evt/ended": (
        '{"v":1,"id":"e3","ts":"2024-05-01T12:00:00Z","seq":3,"vend_id":"vs_01HX",'
        '"reason":"completed","dispensed":[{"item":12,"price":{"value":2500,"currency":"NOK"},'
        '"success":true,"vmc_price":{"value":3500,"currency":"NOK"}}],'
        '"total":{"value":2500,"currency":"NOK"}}',
        Ended(
            id="e3",
            ts=TS,
            seq=3,
            vend_id="vs_01HX",
            reason=EndReason.COMPLETED,
            dispensed=(
                DispensedItem(
                    item=12, price=Money(2500, NOK), success=True, vmc_price=Money(3500, NOK)
                ),
            ),
            total=Money(2500, NOK),
        ),
    ),
    "evt/hello": (
        '{"v":1,"id":"e4","ts":"2024-05-01T12:00:00Z","seq":0,"boot_id":"b-7f3a",'
        '"open_vends":["vs_01HX"],"outbox":2}',
        Hello(id="e4", ts=TS, seq=0, boot_id="b-7f3a", open_vends=("vs_01HX",), outbox=2),
    ),
    "cmd/ping": (
        '{"v":1,"id":"5e6f7a8b9c0d41e2a3b4c5d6e7f8a9b0","ts":"2024-05-01T12:00:00Z",'
        '"expires_at":"2024-05-01T12:00:10Z"}',
        Ping(id="5e6f7a8b9c0d41e2a3b4c5d6e7f8a9b0", ts=TS, expires_at=TS + timedelta(seconds=10)),
    ),
    "evt/pong": (
        '{"v":1,"id":"6f7a8b9c0d1e42f3b4c5d6e7f8a9b0c1","ts":"2024-05-01T12:00:00Z",'
        '"ping_id":"5e6f7a8b9c0d41e2a3b4c5d6e7f8a9b0","boot_id":"b-7f3a","board":"enabled",'
        '"can_vend":true,"open_vends":[]}',
        Pong(
            id="6f7a8b9c0d1e42f3b4c5d6e7f8a9b0c1",
            ts=TS,
            ping_id="5e6f7a8b9c0d41e2a3b4c5d6e7f8a9b0",
            boot_id="b-7f3a",
            board="enabled",
            can_vend=True,
            open_vends=(),
        ),
    ),
    "cloud": (
        '{"v":1,"id":"7a8b9c0d1e2f43a4c5d6e7f8a9b0c1d2","ts":"2024-05-01T12:00:00Z",'
        '"state":"online","replica":"vendgate-cloud"}',
        CloudPresence(
            id="7a8b9c0d1e2f43a4c5d6e7f8a9b0c1d2",
            ts=TS,
            state=StatusState.ONLINE,
            replica="vendgate-cloud",
        ),
    ),
}
# On an evt/ topic but not an event: never stored or acked, so no seq.
NOT_EVENTS = {"evt/pong"}
EVENT_NAMES = [
    name for name in sorted(GOLDEN) if name.startswith("evt/") and name not in NOT_EVENTS
]
WIRE_NAMES = sorted(GOLDEN)

# Where each message type carries money, as JSON paths (keys, and list indexes).
MONEY_PATHS: list[tuple[str, tuple[str | int, ...]]] = [
    ("cmd/authorized", ("amount",)),
    ("evt/started", ("funds",)),
    ("evt/dispensed", ("price",)),
    ("evt/dispensed", ("vmc_price",)),
    ("evt/ended", ("total",)),
    ("evt/ended", ("dispensed", 0, "price")),
    ("evt/ended", ("dispensed", 0, "vmc_price")),
]


def golden_object(wire_name: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(GOLDEN[wire_name][0])
    return parsed


def dumps(obj: object) -> bytes:
    return json.dumps(obj).encode()


def dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def set_path(obj: Any, path: tuple[str | int, ...], value: object) -> None:
    for part in path[:-1]:
        obj = obj[part]
    obj[path[-1]] = value


def required_fields(cls: type[Message]) -> list[str]:
    # "v" has a default for constructors but the decoder insists on it.
    return ["v", *(f.encode_name for f in msgspec.structs.fields(cls) if f.required)]


def decode_error(wire_name: str, payload: bytes) -> MessageError:
    with pytest.raises(MessageError) as caught:
        decode(wire_name, payload)
    assert caught.value.message_type == wire_name
    assert wire_name in str(caught.value)
    return caught.value


# -- the registry ------------------------------------------------------------------------------


def test_every_contract_message_has_a_class_and_a_golden_example() -> None:
    assert set(MESSAGE_TYPES) == set(GOLDEN)
    for wire_name, (_, message) in GOLDEN.items():
        assert MESSAGE_TYPES[wire_name] is type(message)
        assert type(message).wire_name() == wire_name


def test_message_type_by_kind_and_name() -> None:
    assert message_type(TopicKind.COMMAND, "authorized") is Authorized
    assert message_type(TopicKind.EVENT, "dispensed") is Dispensed
    assert message_type(TopicKind.STATUS) is Status
    assert message_type("telemetry") is Telemetry
    assert message_type("evt/ended") is Ended


@pytest.mark.parametrize(
    ("kind", "name"), [(TopicKind.COMMAND, "dispensed"), (TopicKind.EVENT, "nope"), ("x", None)]
)
def test_unknown_message_types_are_refused(kind: TopicKind | str, name: str | None) -> None:
    with pytest.raises(MessageError, match="no such message type"):
        message_type(kind, name)


def test_decode_for_topic() -> None:
    tree = TopicTree()
    payload = GOLDEN["evt/dispensed"][0].encode()
    message = decode_for_topic(tree.parse("vend/v1/m1/evt/dispensed"), payload)
    assert message == GOLDEN["evt/dispensed"][1]
    status = decode_for_topic(ParsedTopic("m1", TopicKind.STATUS), GOLDEN["status"][0])
    assert isinstance(status, Status)
    with pytest.raises(MessageError):
        decode_for_topic(tree.parse("vend/v1/m1/evt/teleported"), payload)
    with pytest.raises(MessageError):  # the right JSON on the wrong topic
        decode_for_topic(tree.parse("vend/v1/m1/evt/started"), payload)


# -- golden JSON and the documented examples ---------------------------------------------------


@pytest.mark.parametrize("wire_name", WIRE_NAMES)
def test_golden_encoding(wire_name: str) -> None:
    text, message = GOLDEN[wire_name]
    assert encode(message) == text.encode()
    assert message.encode() == text.encode()


@pytest.mark.parametrize("wire_name", WIRE_NAMES)
def test_golden_decoding(wire_name: str) -> None:
    text, message = GOLDEN[wire_name]
    assert decode(wire_name, text.encode()) == message
    assert type(message).decode(text.encode()) == message
    assert type(message).decode(text) == message  # str payloads too


def _documented_examples() -> dict[str, str]:
    pattern = re.compile(r"^### `([a-z/]+)`\n.*?```json\n(.*?)```", re.DOTALL | re.MULTILINE)
    return dict(pattern.findall(DOCS.read_text(encoding="utf-8")))


def test_docs_show_every_message_exactly_as_the_golden_example() -> None:
    examples = _documented_examples()
    assert sorted(examples) == WIRE_NAMES
    for wire_name, example in examples.items():
        assert _compact(example) == GOLDEN[wire_name][0].encode(), wire_name
        assert decode(wire_name, example.encode()) == GOLDEN[wire_name][1]


@pytest.mark.parametrize("wire_name", WIRE_NAMES)
def test_envelope_fields_come_first(wire_name: str) -> None:
    keys = list(golden_object(wire_name))
    expected = ["v", "id", "ts", "seq"] if wire_name in EVENT_NAMES else ["v", "id", "ts"]
    assert keys[: len(expected)] == expected


# -- round trips of generated messages ---------------------------------------------------------

texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
CONTROL_CHARACTERS = "".join(map(chr, [*range(0x20), 0x7F]))
identifiers = st.text(
    st.characters(codec="utf-8", exclude_characters=CONTROL_CHARACTERS), min_size=1, max_size=40
)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9.5))])
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)
counts = st.integers(min_value=0, max_value=MAX_COUNT)
items = st.integers(min_value=0, max_value=MAX_ITEM)
currencies = st.sampled_from(["NOK", "EUR", "SEK", "DKK", "JPY"])
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(texts, json_values, max_size=4)


@st.composite
def money_in(draw: st.DrawFn, currency: str, maximum: int = MAX_WIRE_VALUE) -> Money:
    return Money(draw(st.integers(min_value=0, max_value=maximum)), currency)


monies = currencies.flatmap(money_in)


@st.composite
def ended_messages(draw: st.DrawFn) -> Ended:
    currency = draw(currencies)
    lines = draw(
        st.lists(
            st.builds(
                DispensedItem,
                item=items,
                # At most five lines: their total stays within the wire's bound too.
                price=money_in(currency, MAX_WIRE_VALUE // 5),
                success=st.booleans(),
                vmc_price=st.none() | money_in(currency, MAX_WIRE_VALUE // 5),
            ),
            max_size=5,
        )
    )
    return Ended.create(
        now=draw(times),
        seq=draw(counts),
        vend_id=draw(identifiers),
        reason=draw(st.sampled_from(EndReason)),
        dispensed=lines,
        currency=currency,
        message_id=draw(identifiers),
    )


envelope = {"id": identifiers, "ts": times}
STRATEGIES: dict[str, st.SearchStrategy[Message]] = {
    "status": st.builds(
        Status,
        **envelope,
        state=st.sampled_from(StatusState),
        boot_id=identifiers,
        versions=st.dictionaries(texts, st.text(max_size=10), max_size=3),
        seq=st.none() | counts,
    ),
    "telemetry": st.builds(
        Telemetry, **envelope, uptime_s=counts, board=identifiers, outbox=counts, extra=json_objects
    ),
    "cmd/authorized": st.builds(
        Authorized, **envelope, vend_id=identifiers, amount=monies, expires_at=times
    ),
    "cmd/cancel": st.builds(Cancel, **envelope, vend_id=identifiers),
    "cmd/ack": st.builds(Ack, **envelope, events=st.lists(identifiers, max_size=5).map(tuple)),
    "cmd/config": st.builds(Config, **envelope, settings=json_objects),
    "evt/started": st.builds(Started, **envelope, seq=counts, vend_id=identifiers, funds=monies),
    "evt/rejected": st.builds(
        Rejected, **envelope, seq=counts, vend_id=identifiers, reason=st.sampled_from(RejectReason)
    ),
    "evt/dispensed": st.builds(
        Dispensed,
        **envelope,
        seq=counts,
        vend_id=identifiers,
        item=items,
        price=monies,
        success=st.booleans(),
        vmc_price=st.none() | monies,
    ),
    "evt/ended": ended_messages(),
    "evt/hello": st.builds(
        Hello,
        **envelope,
        seq=counts,
        boot_id=identifiers,
        open_vends=st.lists(identifiers, max_size=5).map(tuple),
        outbox=counts,
    ),
    "cmd/ping": st.builds(Ping, **envelope, expires_at=times),
    "evt/pong": st.builds(
        Pong,
        **envelope,
        ping_id=identifiers,
        boot_id=identifiers,
        board=identifiers,
        can_vend=st.booleans(),
        open_vends=st.lists(identifiers, max_size=3).map(tuple),
    ),
    "cloud": st.builds(
        CloudPresence, **envelope, state=st.sampled_from(StatusState), replica=identifiers
    ),
}


def test_every_message_type_has_a_strategy() -> None:
    assert sorted(STRATEGIES) == WIRE_NAMES


@pytest.mark.parametrize("wire_name", WIRE_NAMES)
@given(data=st.data())
def test_round_trip(wire_name: str, data: st.DataObject) -> None:
    message = data.draw(STRATEGIES[wire_name])
    payload = encode(message)
    decoded = decode(wire_name, payload)
    assert type(decoded) is type(message)
    assert decoded == message
    assert encode(decoded) == payload
    assert decoded.ts.tzinfo is UTC
    assert b'"v":1' in payload


@given(ended_messages())
def test_ended_create_is_always_consistent(ended: Ended) -> None:
    assert ended.check_total() == ended.total
    assert ended.total.value == sum(line.price.value for line in ended.dispensed if line.success)


# -- malformed payloads, for every type --------------------------------------------------------


@pytest.mark.parametrize("wire_name", WIRE_NAMES)
@pytest.mark.parametrize("payload", [b"", b"{", b"\xff\xfe", b"{'v': 1}", b"nonsense"])
def test_not_json_is_refused(wire_name: str, payload: bytes) -> None:
    error = decode_error(wire_name, payload)
    assert "JSON" in error.reason


@pytest.mark.parametrize("wire_name", WIRE_NAMES)
@pytest.mark.parametrize("payload", [b"[]", b"[{}]", b"1", b'"status"', b"null", b"true"])
def test_non_objects_are_refused(wire_name: str, payload: bytes) -> None:
    error = decode_error(wire_name, payload)
    assert "object" in error.reason


@pytest.mark.parametrize("wire_name", WIRE_NAMES)
@pytest.mark.parametrize("version", [0, 2, 99, -1, "1", True, None, 1.0])
def test_wrong_version_is_refused(wire_name: str, version: object) -> None:
    obj = golden_object(wire_name)
    obj["v"] = version
    assert decode_error(wire_name, dumps(obj)).field == "v"


@pytest.mark.parametrize(
    ("wire_name", "field"),
    [(name, field) for name in WIRE_NAMES for field in required_fields(MESSAGE_TYPES[name])],
)
def test_missing_required_field_is_refused(wire_name: str, field: str) -> None:
    obj = golden_object(wire_name)
    del obj[field]
    error = decode_error(wire_name, dumps(obj))
    assert error.field == field
    assert field in str(error)


def _wrong_type_for(value: object) -> object:
    # A string is never a valid object or list here, and a list is never a valid scalar.
    return "not-a-container" if isinstance(value, dict | list) else [value]


@pytest.mark.parametrize(
    ("wire_name", "field"), [(name, field) for name in WIRE_NAMES for field in golden_object(name)]
)
def test_mistyped_field_is_refused(wire_name: str, field: str) -> None:
    obj = golden_object(wire_name)
    obj[field] = _wrong_type_for(obj[field])
    error = decode_error(wire_name, dumps(obj))
    assert error.field is not None
    assert error.field.split(".")[0].split("[")[0] == field


@pytest.mark.parametrize(
    ("wire_name", "field", "value"),
    [
        ("evt/dispensed", "item", "12"),
        ("evt/dispensed", "item", 12.0),
        ("evt/dispensed", "item", True),
        ("evt/dispensed", "success", 1),
        ("evt/dispensed", "success", "true"),
        ("evt/started", "seq", -1),
        ("evt/hello", "outbox", -1),
        ("telemetry", "uptime_s", -5),
        ("evt/rejected", "reason", "bored"),
        ("evt/ended", "reason", "COMPLETED"),
        ("status", "state", "maybe"),
        ("status", "versions", {"agent": 1}),
        ("cmd/ack", "events", ["e1", ""]),
        ("cmd/ack", "events", ["e1", 2]),
        ("evt/hello", "open_vends", [""]),
        ("cmd/authorized", "expires_at", "2024-05-01T12:02:00"),
        ("cmd/authorized", "expires_at", "tomorrow"),
        ("cmd/cancel", "vend_id", ""),
        ("cmd/cancel", "vend_id", "x" * 129),
        ("evt/hello", "boot_id", ""),
        ("status", "seq", -1),
        ("status", "seq", True),
        ("status", "seq", "2"),
        ("evt/pong", "can_vend", 1),
        ("evt/pong", "can_vend", "yes"),
        ("evt/pong", "ping_id", ""),
        ("evt/pong", "open_vends", [""]),
        ("cmd/ping", "expires_at", "2024-05-01T12:00:10"),
        ("cloud", "state", "maybe"),
        ("cloud", "replica", ""),
    ],
)
def test_bad_field_values_are_refused(wire_name: str, field: str, value: object) -> None:
    obj = golden_object(wire_name)
    obj[field] = value
    error = decode_error(wire_name, dumps(obj))
    assert error.field is not None
    assert error.field.startswith(field)


@pytest.mark.parametrize("wire_name", WIRE_NAMES)
@pytest.mark.parametrize(
    "ts", ["2024-05-01T12:00:00", "2024-05-01", "yesterday", "", 1714564800, None]
)
def test_naive_or_malformed_timestamp_is_refused(wire_name: str, ts: object) -> None:
    obj = golden_object(wire_name)
    obj["ts"] = ts
    assert decode_error(wire_name, dumps(obj)).field == "ts"


@pytest.mark.parametrize("wire_name", WIRE_NAMES)
@pytest.mark.parametrize("message_id", ["", 7, None, "x" * 129])
def test_bad_id_is_refused(wire_name: str, message_id: object) -> None:
    obj = golden_object(wire_name)
    obj["id"] = message_id
    assert decode_error(wire_name, dumps(obj)).field == "id"


@pytest.mark.parametrize("wire_name", EVENT_NAMES)
@pytest.mark.parametrize("seq", [-1, "1", 1.5, None])
def test_bad_seq_is_refused(wire_name: str, seq: object) -> None:
    obj = golden_object(wire_name)
    obj["seq"] = seq
    assert decode_error(wire_name, dumps(obj)).field == "seq"


@pytest.mark.parametrize(("wire_name", "path"), MONEY_PATHS)
@pytest.mark.parametrize(
    ("money", "part"),
    [
        ({"value": -1, "currency": "NOK"}, "value"),
        ({"value": 1.5, "currency": "NOK"}, "value"),
        ({"value": "100", "currency": "NOK"}, "value"),
        ({"value": True, "currency": "NOK"}, "value"),
        ({"value": 100, "currency": "nok"}, "currency"),
        ({"value": 100, "currency": "NO"}, "currency"),
        ({"value": 100, "currency": "NOKK"}, "currency"),
        ({"value": 100, "currency": 578}, "currency"),
        ({"value": 100}, "currency"),
        ({"currency": "NOK"}, "value"),
        (2500, None),
    ],
)
def test_bad_money_is_refused(
    wire_name: str, path: tuple[str | int, ...], money: object, part: str | None
) -> None:
    obj = golden_object(wire_name)
    set_path(obj, path, money)
    error = decode_error(wire_name, dumps(obj))
    assert error.field is not None
    assert error.field.startswith(dotted(path))
    if part is not None:
        assert part in str(error)


@pytest.mark.parametrize("wire_name", WIRE_NAMES)
def test_oversized_payload_is_refused(wire_name: str) -> None:
    obj = golden_object(wire_name)
    obj["padding"] = "x" * MAX_PAYLOAD_BYTES
    assert "larger" in decode_error(wire_name, dumps(obj)).reason


# -- forward compatibility ---------------------------------------------------------------------


@pytest.mark.parametrize("wire_name", WIRE_NAMES)
def test_unknown_fields_are_ignored(wire_name: str) -> None:
    obj = golden_object(wire_name)
    obj["added_in_a_later_release"] = {"anything": [1, 2, 3]}
    obj["flag"] = True
    assert decode(wire_name, dumps(obj)) == GOLDEN[wire_name][1]


@pytest.mark.parametrize(("wire_name", "path"), MONEY_PATHS)
def test_unknown_fields_inside_money_are_ignored(
    wire_name: str, path: tuple[str | int, ...]
) -> None:
    obj = golden_object(wire_name)
    set_path(obj, (*path, "formatted"), "35,00 kr")
    assert decode(wire_name, dumps(obj)) == GOLDEN[wire_name][1]


@pytest.mark.parametrize("wire_name", WIRE_NAMES)
def test_other_offsets_are_accepted_and_stored_in_utc(wire_name: str) -> None:
    obj = golden_object(wire_name)
    obj["ts"] = "2024-05-01T14:00:00+02:00"
    message = decode(wire_name, dumps(obj))
    assert message.ts == TS
    assert message.ts.tzinfo is UTC
    assert encode(message) == GOLDEN[wire_name][0].encode()


def test_telemetry_extra_is_optional() -> None:
    obj = golden_object("telemetry")
    del obj["extra"]
    telemetry = decode("telemetry", dumps(obj))
    assert isinstance(telemetry, Telemetry)
    assert telemetry.extra == {}


# -- building messages -------------------------------------------------------------------------


def test_factories_fill_id_and_ts_from_the_given_now() -> None:
    oslo = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    first = Cancel.create(now=oslo, vend_id="v")
    second = Cancel.create(now=oslo, vend_id="v")
    assert first.ts == TS
    assert first.ts.tzinfo is UTC
    assert first.id != second.id
    assert re.fullmatch(r"[0-9a-f]{32}", first.id)
    assert Cancel.create(now=TS, vend_id="v", message_id="fixed").id == "fixed"


@pytest.mark.parametrize(
    "build",
    [
        lambda now: Status.create(now=now, state=StatusState.OFFLINE, boot_id="b", versions={}),
        lambda now: Telemetry.create(now=now, uptime_s=1, board="idle", outbox=0),
        lambda now: Authorized.create(now=now, vend_id="v", amount=Money(1, NOK), expires_at=TS),
        lambda now: Cancel.create(now=now, vend_id="v"),
        lambda now: Ack.create(now=now, events=["e"]),
        lambda now: Config.create(now=now, settings={}),
        lambda now: Started.create(now=now, seq=0, vend_id="v", funds=Money(1, NOK)),
        lambda now: Rejected.create(now=now, seq=0, vend_id="v", reason=RejectReason.EXPIRED),
        lambda now: Dispensed.create(
            now=now, seq=0, vend_id="v", item=1, price=Money(1, NOK), success=False
        ),
        lambda now: Ended.create(
            now=now, seq=0, vend_id="v", reason=EndReason.TIMEOUT, dispensed=[], currency=NOK
        ),
        lambda now: Hello.create(now=now, seq=0, boot_id="b", open_vends=[], outbox=0),
        lambda now: Ping.create(now=now, expires_at=TS),
        lambda now: Pong.create(
            now=now, ping_id="p", boot_id="b", board="enabled", can_vend=False, open_vends=["v"]
        ),
        lambda now: CloudPresence.create(now=now, state=StatusState.ONLINE, replica="r"),
        lambda now: Status.create(
            now=now, state=StatusState.ONLINE, boot_id="b", versions={}, seq=4
        ),
    ],
)
def test_every_factory_builds_a_decodable_message_and_refuses_naive_now(build: Any) -> None:
    message = build(TS)
    assert decode(type(message).wire_name(), encode(message)) == message
    with pytest.raises(MessageError, match="aware"):
        build(datetime(2024, 5, 1, 12, 0))


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Cancel(id="", ts=TS, vend_id="v"), "id"),
        (lambda: Cancel(id="i", ts=datetime(2024, 5, 1), vend_id="v"), "ts"),
        (lambda: Cancel(id="i", ts=TS, vend_id=""), "vend_id"),
        (lambda: Cancel(v=2, id="i", ts=TS, vend_id="v"), "v"),
        (lambda: Started(id="i", ts=TS, seq=-1, vend_id="v", funds=Money(1, NOK)), "seq"),
        (lambda: Started(id="i", ts=TS, seq=1, vend_id="v", funds=2500), "funds"),  # type: ignore[arg-type]
        (lambda: Hello(id="i", ts=TS, seq=True, boot_id="b", open_vends=(), outbox=0), "seq"),
        (
            lambda: Hello(id="i", ts=TS, seq=0, boot_id="b", open_vends=("",), outbox=0),
            "open_vends[0]",
        ),
        (lambda: Telemetry(id="i", ts=TS, uptime_s=-1, board="b", outbox=0), "uptime_s"),
        (lambda: Rejected(id="i", ts=TS, seq=0, vend_id="v", reason="bored"), "reason"),  # type: ignore[arg-type]
        (lambda: Ack(id="i", ts=TS, events=("ok", "")), "events[1]"),
        (lambda: DispensedItem(item=-1, price=Money(1, NOK), success=True), "item"),
        (
            lambda: Authorized(
                id="i", ts=TS, vend_id="v", amount=Money(1, NOK), expires_at=datetime(2024, 5, 1)
            ),
            "expires_at",
        ),
    ],
)
def test_constructors_refuse_what_the_decoder_refuses(build: Any, field: str) -> None:
    with pytest.raises(MessageError) as caught:
        build()
    assert caught.value.field == field


def test_plain_strings_become_enum_members() -> None:
    rejected = Rejected(id="i", ts=TS, seq=0, vend_id="v", reason="busy")  # type: ignore[arg-type]
    assert rejected.reason is RejectReason.BUSY
    status = Status(id="i", ts=TS, state="offline", boot_id="b", versions={})  # type: ignore[arg-type]
    assert status.state is StatusState.OFFLINE


def test_messages_are_frozen() -> None:
    cancel = GOLDEN["cmd/cancel"][1]
    with pytest.raises(AttributeError):
        cancel.id = "other"  # type: ignore[misc]


def test_message_kinds() -> None:
    for wire_name, (_, message) in GOLDEN.items():
        assert isinstance(message, Event) is (wire_name in EVENT_NAMES)
        assert type(message).topic_kind.value == wire_name.split("/")[0]


def test_a_status_from_a_sender_without_seq_still_decodes() -> None:
    obj = golden_object("status")
    del obj["seq"]
    status = decode("status", dumps(obj))
    assert isinstance(status, Status)
    assert status.seq is None
    assert status == msgspec.structs.replace(GOLDEN["status"][1], seq=None)


def test_ping_expiry() -> None:
    ping = GOLDEN["cmd/ping"][1]
    assert isinstance(ping, Ping)
    assert not ping.is_expired(TS + timedelta(seconds=9))
    assert ping.is_expired(TS + timedelta(seconds=10))


def test_message_error_is_a_value_error_with_type_and_field() -> None:
    obj = golden_object("evt/dispensed")
    obj["price"]["value"] = "a lot"
    error = decode_error("evt/dispensed", dumps(obj))
    assert isinstance(error, ValueError)
    assert error.field == "price.value"
    assert "evt/dispensed" in str(error)
    assert "price.value" in str(error)


# -- helpers -----------------------------------------------------------------------------------


def test_authorized_expiry() -> None:
    authorized = GOLDEN["cmd/authorized"][1]
    assert isinstance(authorized, Authorized)
    assert not authorized.is_expired(TS)
    assert not authorized.is_expired(TS + timedelta(minutes=2) - timedelta(microseconds=1))
    assert authorized.is_expired(TS + timedelta(minutes=2))
    assert authorized.is_expired(datetime(2024, 5, 1, 14, 3, tzinfo=timezone(timedelta(hours=2))))
    with pytest.raises(MessageError):
        authorized.is_expired(datetime(2024, 5, 1, 12, 0))


def _ended(lines: list[DispensedItem], total: Money) -> Ended:
    return Ended(
        id="e",
        ts=TS,
        seq=0,
        vend_id="v",
        reason=EndReason.COMPLETED,
        dispensed=tuple(lines),
        total=total,
    )


def test_ended_total_counts_only_successful_items() -> None:
    lines = [
        DispensedItem(item=1, price=Money(2500, NOK), success=True),
        DispensedItem(item=2, price=Money(3000, NOK), success=False),
        DispensedItem(item=3, price=Money(1000, NOK), success=True),
    ]
    assert _ended(lines, Money(3500, NOK)).check_total() == Money(3500, NOK)
    created = Ended.create(
        now=TS, seq=0, vend_id="v", reason=EndReason.COMPLETED, dispensed=lines, currency=NOK
    )
    assert created.total == Money(3500, NOK)
    assert _ended([], Money(0, NOK)).check_total() == Money(0, NOK)


@pytest.mark.parametrize(
    ("lines", "total", "field"),
    [
        ([DispensedItem(item=1, price=Money(2500, NOK), success=True)], Money(2400, NOK), "total"),
        ([DispensedItem(item=1, price=Money(2500, NOK), success=False)], Money(2500, NOK), "total"),
        ([], Money(1, NOK), "total"),
        (
            [DispensedItem(item=1, price=Money(2500, "EUR"), success=True)],
            Money(2500, NOK),
            "dispensed[0].price",
        ),
        (
            [
                DispensedItem(item=1, price=Money(2500, NOK), success=True),
                DispensedItem(item=2, price=Money(100, "SEK"), success=False),
            ],
            Money(2500, NOK),
            "dispensed[1].price",
        ),
    ],
)
def test_ended_inconsistent_total_is_reported(
    lines: list[DispensedItem], total: Money, field: str
) -> None:
    ended = _ended(lines, total)
    # The decoder accepts it (the receiver decides), the check names the problem.
    assert decode("evt/ended", encode(ended)) == ended
    with pytest.raises(MessageError) as caught:
        ended.check_total()
    assert caught.value.field == field


def test_ended_create_refuses_mixed_currencies() -> None:
    with pytest.raises(MessageError, match="EUR"):
        Ended.create(
            now=TS,
            seq=0,
            vend_id="v",
            reason=EndReason.COMPLETED,
            dispensed=[DispensedItem(item=1, price=Money(1, "EUR"), success=True)],
            currency=NOK,
        )


def test_dispensed_as_item() -> None:
    dispensed = GOLDEN["evt/dispensed"][1]
    assert isinstance(dispensed, Dispensed)
    assert dispensed.as_item() == DispensedItem(
        item=12, price=Money(2500, NOK), success=True, vmc_price=Money(3500, NOK)
    )


# -- vmc_price: what the VMC asked, next to the price charged (additive in v1) -----------------

DISPENSED_V1_0 = (
    '{"v":1,"id":"e2","ts":"2024-05-01T12:00:00Z","seq":2,"vend_id":"vs_01HX",'
    '"item":12,"price":{"value":2500,"currency":"NOK"},"success":true}'
)


def test_dispensed_and_ended_carry_the_vmc_price_next_to_the_price_charged() -> None:
    asked = Money(3500, NOK)
    dispensed = Dispensed.create(
        now=TS, seq=2, vend_id="v", item=12, price=Money(2500, NOK), success=True, vmc_price=asked
    )
    line = DispensedItem(item=12, price=Money(2500, NOK), success=True, vmc_price=asked)
    ended = Ended.create(
        now=TS, seq=3, vend_id="v", reason=EndReason.COMPLETED, dispensed=[line], currency=NOK
    )
    assert dispensed.as_item() == line
    assert decode("evt/dispensed", dispensed.encode()) == dispensed
    decoded = decode("evt/ended", ended.encode())
    assert isinstance(decoded, Ended)
    assert decoded.dispensed[0].vmc_price == asked
    assert decoded.total == Money(2500, NOK)  # the total is of the prices charged


def test_an_older_sender_without_vmc_price_still_decodes() -> None:
    dispensed = decode("evt/dispensed", DISPENSED_V1_0.encode())
    assert isinstance(dispensed, Dispensed)
    assert dispensed.vmc_price is None
    ended = json.loads(GOLDEN["evt/ended"][0])
    for line in ended["dispensed"]:
        line.pop("vmc_price", None)
    decoded = decode("evt/ended", dumps(ended))
    assert isinstance(decoded, Ended)
    assert decoded.dispensed[0].vmc_price is None


@pytest.mark.parametrize("bad", [-1, 1.5, "3500", {"value": 1}, True])
def test_a_malformed_vmc_price_is_refused_naming_the_field(bad: object) -> None:
    obj = json.loads(DISPENSED_V1_0)
    obj["vmc_price"] = {"value": bad, "currency": NOK} if bad in (-1, 1.5, "3500") else bad
    error = decode_error("evt/dispensed", dumps(obj))
    assert error.field is not None
    assert error.field.startswith("vmc_price")

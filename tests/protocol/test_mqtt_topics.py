"""Topics of the vendgate tree: build, parse, filters and pure wildcard matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vendgate.protocol.mqtt import (
    MachineIdError,
    ParsedTopic,
    Topic,
    TopicError,
    TopicFilter,
    TopicKind,
    TopicTree,
    is_valid_machine_id,
    matches,
    validate_machine_id,
)

tree = TopicTree()
machine_ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
message_names = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
prefixes = st.lists(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), min_size=1, max_size=3).map(
    "/".join
)


def test_builders_follow_the_contract() -> None:
    assert str(tree.status("m1")) == "vend/v1/m1/status"
    assert str(tree.command("m1", "authorized")) == "vend/v1/m1/cmd/authorized"
    assert str(tree.event("m1", "dispensed")) == "vend/v1/m1/evt/dispensed"
    assert str(tree.telemetry("m1")) == "vend/v1/m1/telemetry"
    assert tree.status("m1") == Topic("vend/v1/m1/status")


def test_prefix_is_configurable() -> None:
    custom = TopicTree("acme/vend/v9")
    assert custom.event("m1", "hello").value == "acme/vend/v9/m1/evt/hello"
    assert custom.parse("acme/vend/v9/m1/status") == ParsedTopic("m1", TopicKind.STATUS)
    with pytest.raises(TopicError, match="not under"):
        custom.parse("vend/v1/m1/status")


@pytest.mark.parametrize("prefix", ["", "vend/", "/vend", "vend//v1", "vend/+", "vend/#", "$SYS/x"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(TopicError):
        TopicTree(prefix)


def test_cloud_and_edge_filters() -> None:
    assert [str(f) for f in tree.cloud_filters()] == [
        "vend/v1/+/evt/+",
        "vend/v1/+/status",
        "vend/v1/+/telemetry",
    ]
    assert [str(f) for f in tree.cloud_filters(share_group="cloud")] == [
        "$share/cloud/vend/v1/+/evt/+",
        "$share/cloud/vend/v1/+/status",
        "$share/cloud/vend/v1/+/telemetry",
    ]
    assert str(tree.edge_filter("m1")) == "vend/v1/m1/cmd/+"
    assert str(tree.events_filter("g")) == "$share/g/vend/v1/+/evt/+"
    assert str(tree.status_filter()) == "vend/v1/+/status"
    assert str(tree.telemetry_filter()) == "vend/v1/+/telemetry"


def test_the_cloud_presence_topic_is_outside_every_machine_subtree() -> None:
    presence = tree.cloud_presence()
    assert presence.value == "vend/v1/cloud"
    assert tree.is_cloud_presence(presence)
    assert tree.is_cloud_presence("vend/v1/cloud")
    assert not tree.is_cloud_presence("vend/v1/cloud/status")
    assert TopicTree("acme/v2").cloud_presence().value == "acme/v2/cloud"
    # A machine called "cloud" has topics two levels deep: never this one.
    assert tree.status("cloud").value == "vend/v1/cloud/status"
    for topic_filter in tree.cloud_filters():
        assert not topic_filter.matches(presence)
    with pytest.raises(TopicError):
        tree.parse("vend/v1/cloud")
    with pytest.raises(TopicError):
        tree.parse("vend/v1/m1/cloud")
    with pytest.raises(TopicError):
        ParsedTopic("m1", TopicKind.CLOUD)


def test_edge_filters_and_the_plain_pong_filter() -> None:
    assert [str(f) for f in tree.edge_filters("m1")] == ["vend/v1/m1/cmd/+", "vend/v1/cloud"]
    pong = tree.pong_filter()
    assert str(pong) == "vend/v1/+/evt/pong"
    assert pong.share_group is None
    assert pong.matches("vend/v1/m7/evt/pong")
    assert not pong.matches("vend/v1/m7/evt/ended")


def test_filters_catch_exactly_their_topics() -> None:
    events, statuses, telemetry = tree.cloud_filters(share_group="cloud")
    assert events.matches(tree.event("m1", "ended"))
    assert not events.matches(tree.command("m1", "ack"))
    assert statuses.matches(tree.status("m2"))
    assert not statuses.matches(tree.telemetry("m2"))
    assert telemetry.matches(tree.telemetry("m2"))
    edge = tree.edge_filter("m1")
    assert edge.matches(tree.command("m1", "authorized"))
    assert not edge.matches(tree.command("m2", "authorized"))
    assert not edge.matches(tree.event("m1", "started"))


def test_qos_and_retain_per_kind() -> None:
    assert {kind: (kind.qos, kind.retain) for kind in TopicKind} == {
        TopicKind.STATUS: (1, True),
        TopicKind.COMMAND: (1, False),
        TopicKind.EVENT: (1, False),
        TopicKind.TELEMETRY: (0, False),
        TopicKind.CLOUD: (1, True),
    }


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("vend/v1/m1/status", ParsedTopic("m1", TopicKind.STATUS)),
        ("vend/v1/m1/telemetry", ParsedTopic("m1", TopicKind.TELEMETRY)),
        ("vend/v1/M_9-x/cmd/ack", ParsedTopic("M_9-x", TopicKind.COMMAND, "ack")),
        ("vend/v1/m1/evt/dispensed", ParsedTopic("m1", TopicKind.EVENT, "dispensed")),
    ],
)
def test_parse(topic: str, expected: ParsedTopic) -> None:
    assert tree.parse(topic) == expected
    assert tree.parse(Topic(topic)) == expected


@pytest.mark.parametrize(
    "topic",
    [
        "vend/v1",
        "vend/v1/m1",
        "vend/v1/m1/",
        "vend/v1/m1/evt",
        "vend/v1/m1/evt/",
        "vend/v1/m1/evt/dispensed/extra",
        "vend/v1/m1/status/x",
        "vend/v1/m1/telemetry/x",
        "vend/v1/m1/unknown",
        "vend/v1/m1/cmd/Authorized",
        "vend/v2/m1/status",
        "vend/v1x/m1/status",
        "other/m1/status",
        "vend/v1//status",
        "vend/v1/m.1/status",
        "vend/v1/+/status",
        "vend/v1/#",
        "",
    ],
)
def test_parse_refuses_foreign_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        tree.parse(topic)


@pytest.mark.parametrize(
    "machine_id",
    ["", "a/b", "a+b", "a#b", "+", "#", "m 1", "m.1", "æøå", "x" * 65, "m1\0", "$m"],
)
def test_invalid_machine_ids(machine_id: str) -> None:
    assert not is_valid_machine_id(machine_id)
    with pytest.raises(MachineIdError):
        validate_machine_id(machine_id)
    with pytest.raises(MachineIdError):
        tree.status(machine_id)
    with pytest.raises(MachineIdError):
        tree.edge_filter(machine_id)


def test_machine_id_must_be_a_string() -> None:
    assert not is_valid_machine_id(42)
    with pytest.raises(MachineIdError):
        validate_machine_id(None)


@pytest.mark.parametrize("name", ["", "Authorized", "a/b", "+", "#", "1st", "x" * 33, "a-b"])
def test_invalid_message_names(name: str) -> None:
    with pytest.raises(TopicError):
        tree.command("m1", name)
    with pytest.raises(TopicError):
        tree.event("m1", name)


def test_parsed_topic_checks_its_name() -> None:
    with pytest.raises(TopicError):
        ParsedTopic("m1", TopicKind.STATUS, "x")
    with pytest.raises(TopicError):
        ParsedTopic("m1", TopicKind.EVENT)
    assert ParsedTopic("m1", TopicKind.EVENT, "ended").kind_name == "evt/ended"
    assert ParsedTopic("m1", TopicKind.TELEMETRY).kind_name == "telemetry"


MACHINE_KINDS = [kind for kind in TopicKind if kind is not TopicKind.CLOUD]


@given(machine_ids, message_names, prefixes, st.sampled_from(MACHINE_KINDS))
def test_build_parse_round_trip(machine_id: str, name: str, prefix: str, kind: TopicKind) -> None:
    custom = TopicTree(prefix)
    parsed = ParsedTopic(machine_id, kind, name if kind.has_name else None)
    topic = custom.build(parsed)
    assert custom.parse(topic) == parsed
    assert custom.parse(str(topic)) == parsed
    assert topic.value.startswith(prefix + "/" + machine_id + "/")


@given(machine_ids, message_names)
def test_named_builders_agree_with_parse(machine_id: str, name: str) -> None:
    assert tree.parse(tree.command(machine_id, name)) == ParsedTopic(
        machine_id, TopicKind.COMMAND, name
    )
    assert tree.parse(tree.event(machine_id, name)).name == name
    assert tree.edge_filter(machine_id).matches(tree.command(machine_id, name))
    assert tree.events_filter("cloud").matches(tree.event(machine_id, name))


@given(machine_ids)
def test_valid_machine_ids_are_accepted(machine_id: str) -> None:
    assert validate_machine_id(machine_id) == machine_id
    assert tree.parse(tree.telemetry(machine_id)).machine_id == machine_id


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("a/b/c", "a/b/c", True),
        ("a/b/c", "a/b", False),
        ("a/b", "a/b/c", False),
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        ("a/+", "a/b/c", False),
        ("+/+", "/b", True),
        ("+", "", False),  # an empty topic is not a topic: refused before matching
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("a/#", "b/a", False),
        ("#", "a/b/c", True),
        ("#", "$SYS/broker", False),
        ("+/broker", "$SYS/broker", False),
        ("$SYS/#", "$SYS/broker", True),
        ("vend/v1/+/evt/+", "vend/v1/m1/evt/dispensed", True),
        ("vend/v1/+/evt/+", "vend/v1/m1/cmd/dispensed", False),
        ("vend/v1/+/evt/+", "vend/v1/m1/evt", False),
        ("$share/cloud/vend/v1/+/evt/+", "vend/v1/m1/evt/ended", True),
        ("$share/cloud/vend/v1/+/status", "vend/v1/m1/status", True),
        ("$share/cloud/vend/v1/+/status", "vend/v1/m1/telemetry", False),
        ("$share/g/#", "anything/at/all", True),
        ("$share/g/a/b", "$share/g/a/b", False),
        ("A/b", "a/b", False),
    ],
)
def test_matching_table(topic_filter: str, topic: str, expected: bool) -> None:
    if not topic:
        with pytest.raises(TopicError):
            matches(topic_filter, topic)
        return
    assert matches(topic_filter, topic) is expected
    assert Topic(topic).matches(topic_filter) is expected
    assert TopicFilter(topic_filter).matches(Topic(topic)) is expected


@pytest.mark.parametrize(
    "topic_filter",
    ["", "a/#/b", "a#", "a/b+", "+a/b", "$share/cloud", "$share/cloud/", "$share//a", "$share/+/a"],
)
def test_invalid_filters(topic_filter: str) -> None:
    with pytest.raises(TopicError):
        TopicFilter(topic_filter)


@pytest.mark.parametrize("topic", ["", "a/+/b", "a/#", "+", "a\0b", "x" * 65536])
def test_invalid_topic_names(topic: str) -> None:
    with pytest.raises(TopicError):
        Topic(topic)


def test_topic_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="wildcards"):
        Topic("a/+")


def test_share_group_and_pattern() -> None:
    shared = TopicFilter("$share/cloud/vend/v1/+/evt/+")
    assert shared.share_group == "cloud"
    assert shared.pattern == "vend/v1/+/evt/+"
    plain = TopicFilter("vend/v1/+/evt/+")
    assert plain.share_group is None
    assert plain.pattern == plain.value
    assert plain.shared("g") == TopicFilter("$share/g/vend/v1/+/evt/+")
    assert shared.shared("other").value == "$share/other/vend/v1/+/evt/+"


@given(machine_ids, machine_ids, message_names)
def test_edge_filter_never_leaks_another_machines_commands(own: str, other: str, name: str) -> None:
    delivered = tree.edge_filter(own).matches(tree.command(other, name))
    assert delivered is (own == other)

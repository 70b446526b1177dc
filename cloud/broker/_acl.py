"""Who may do what on the broker: the grants of a machine and of the cloud, in one place.

Written in Mosquitto dynamic security's vocabulary (an ACL type and a topic filter per grant)
because that is where they end up: ``DynsecAccounts`` turns them into a role per machine,
``init-dynsec`` into the cloud's role. The embedded amqtt broker checks the same grants with
``permits``, which follows the plugin's rules (a publish matches the grant's filter; a
subscription must lie wholly inside it). Anything no grant allows is refused: the default
access that ``initial_config`` writes denies all four kinds (unsubscribing aside).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from vendgate.protocol.mqtt import (
    ContractError,
    TopicKind,
    TopicTree,
    matches,
    validate_machine_id,
)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
CONTROL_FILTER = "$CONTROL/dynamic-security/#"
CLOUD_ROLE = "vendgate-cloud"
MACHINE_ROLE_PREFIX = "vendgate-machine-"


class Access(StrEnum):
    """What a grant allows, named as the dynamic-security plugin names its ACL types."""

    SEND = "publishClientSend"  # the client publishes to the broker
    RECEIVE = "publishClientReceive"  # the broker delivers to the client
    SUBSCRIBE = "subscribePattern"  # the client subscribes (wildcards in the grant match)


@dataclass(frozen=True, slots=True)
class Grant:
    access: Access
    topic: str  # an MQTT topic filter

    def as_dynsec(self) -> dict[str, object]:
        return {"acltype": str(self.access), "topic": self.topic, "allow": True}


def _read(topic_filter: str) -> tuple[Grant, Grant]:
    return Grant(Access.SUBSCRIBE, topic_filter), Grant(Access.RECEIVE, topic_filter)


def machine_grants(machine_id: str, prefix: str) -> tuple[Grant, ...]:
    """Machine ``machine_id``: read its commands and the cloud's presence, write its own
    events, status and telemetry. Nothing else (no other machine's topics, no wildcards
    across machines)."""
    tree = TopicTree(prefix)
    own = f"{tree.prefix}/{validate_machine_id(machine_id)}"
    return (
        *_read(f"{own}/{TopicKind.COMMAND}/#"),
        *_read(str(tree.cloud_presence())),
        Grant(Access.SEND, f"{own}/{TopicKind.EVENT}/#"),
        Grant(Access.SEND, str(tree.status(machine_id))),
        Grant(Access.SEND, str(tree.telemetry(machine_id))),
    )


def cloud_grants(prefix: str) -> tuple[Grant, ...]:
    """A cloud replica (and the admin login): everything under the prefix, its shared
    subscriptions (``$share/<group>/...``), and the dynamic-security control topics."""
    everything = f"{TopicTree(prefix).prefix}/#"
    return (
        *_read(everything),
        Grant(Access.SEND, everything),
        Grant(Access.SUBSCRIBE, f"$share/+/{everything}"),
        *_read(CONTROL_FILTER),
        Grant(Access.SEND, CONTROL_FILTER),
    )


def machine_role(machine_id: str) -> str:
    return MACHINE_ROLE_PREFIX + machine_id


def permits(grants: Iterable[Grant], access: Access, topic: str) -> bool:
    """Whether ``grants`` allow ``access`` on ``topic`` (a topic name, or for ``SUBSCRIBE`` a
    filter). Malformed topics are refused, never raised."""
    for grant in grants:
        if grant.access is not access:
            continue
        if access is Access.SUBSCRIBE:
            if _covers(grant.topic, topic):
                return True
        else:
            try:
                if matches(grant.topic, topic):
                    return True
            except ContractError:
                return False
    return False


def _covers(grant: str, subscription: str) -> bool:
    """A subscription lies inside a grant's filter: every topic it can match, the grant matches.

    Level by level, a grant's ``+`` covers one level of anything but ``#``, its trailing ``#``
    covers the rest, and a literal covers only itself (so ``vend/v1/+/cmd/#`` is not inside
    ``vend/v1/m1/cmd/#``).
    """
    grant_levels, sub_levels = grant.split("/"), subscription.split("/")
    for index, level in enumerate(grant_levels):
        if level == "#":
            return True
        if index >= len(sub_levels) or sub_levels[index] == "#":
            return False
        if level != "+" and level != sub_levels[index]:
            return False
    return len(grant_levels) == len(sub_levels)

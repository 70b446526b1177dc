"""A fix for amqtt 0.12.x's broker under a connect storm (docs/broker.md, "amqtt under a connect
storm").

amqtt keeps its subscriptions in one dict, ``Broker._subscriptions`` (topic filter -> the
sessions subscribed with their QoS), and walks that live dict while it awaits inside the loop:

- ``Broker._handle_client_session``, on every connect: ``for topic in self._subscriptions:``
  ``await self._publish_retained_messages_for_subscription(...)``, which for a returning session
  waits until its retained messages are sent (a QoS 1 round trip to the client);
- ``Broker._run_broadcast``, on every published message: ``for k_filter, subscriptions in
  self._subscriptions.items():`` with ``await self._topic_filtering(...)`` for each subscriber
  of a matching filter (it awaits only when a topic plugin runs: the guarded broker).

Meanwhile other clients run: one subscribing to a filter nobody had yet adds a key
(``add_subscription``), a session cleaned up removes its keys (``_del_all_subscriptions``), and
the walk's next step raises ``RuntimeError: dictionary changed size during iteration``. In
``_handle_client_session`` nothing catches it: the client has its CONNACK but its session never
reaches its message loop (no SUBACK, nothing routed), so it times out and drops. In
``_run_broadcast`` the message is not delivered to the filters after that point.

The fix: ``Broker._subscriptions`` becomes a dict that walks a snapshot of its keys (and of its
items), as amqtt's loops would with ``list(...)``; a filter added during the walk is simply not
visited by it (its client subscribed after the message or the connect began) and one removed is
visited with what its list holds then. Reads, writes, ``in`` and ``get`` are the dict's own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import amqtt

log = logging.getLogger(__name__)

# The amqtt versions whose broker.py this fix was read against (0.12.1, the one installed; the
# upstream source of 0.12.0 walks the same live dict).
TARGET_VERSIONS = ("0.12.",)


class SnapshotSubscriptions(dict[str, list[tuple[Any, int]]]):
    """amqtt's subscriptions; iterating it (or its items) walks a copy taken at the start."""

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().__iter__()))

    def items(self) -> list[tuple[str, list[tuple[Any, int]]]]:  # type: ignore[override]
        return list(super().items())


def snapshot_subscriptions(broker: Any) -> None:
    """Make ``broker``'s subscriptions walk snapshots. Raises if amqtt no longer keeps them in a
    plain dict named ``_subscriptions`` (then this fix no longer applies: read amqtt's broker.py
    again); warns, and applies it anyway, on an amqtt version it was not read against."""
    version = getattr(amqtt, "__version__", "unknown")
    subscriptions = getattr(broker, "_subscriptions", None)
    if type(subscriptions) is not dict:
        raise RuntimeError(
            f"amqtt {version}: Broker._subscriptions is {type(subscriptions).__name__}, not the "
            "dict vendgate/_amqtt_fixes.py wraps; check that fix against this amqtt"
        )
    if not version.startswith(TARGET_VERSIONS):
        log.warning(
            "amqtt %s: the connect-storm fix was written for %s; check that amqtt still walks "
            "Broker._subscriptions while awaiting (vendgate/_amqtt_fixes.py)",
            version,
            " ".join(f"{v}x" for v in TARGET_VERSIONS),
        )
    broker._subscriptions = SnapshotSubscriptions(subscriptions)

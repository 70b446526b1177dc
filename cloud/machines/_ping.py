"""Asking a machine whether it can sell right now: ``cmd/ping`` out, ``evt/pong`` back.

In memory, per replica: one waiter per ping id, resolved by the MQTT handler when the pong
arrives. Every replica subscribes to pongs plainly (not shared), so the replica that pinged
hears the answer; the others find no waiter and drop it. Nothing is written to the database.
Pings go out over the link they were built with (None: the app runs no MQTT, nobody answers).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Protocol

from vendgate.protocol import Clock
from vendgate.protocol.mqtt import Ping, Pong, TopicTree

__all__ = ["PING_LIFETIME_S", "PingLink", "Pings"]

log = logging.getLogger(__name__)

# The ping's `expires_at`: long after the cloud stopped waiting, so a few seconds of clock
# difference never make a machine ignore a fresh ping; short, so one delivered late (queued
# across a reconnect) is dropped rather than answered.
PING_LIFETIME_S = 10.0


class PingLink(Protocol):
    """The MQTT link as pings use it; ``publish`` raises ``ConnectionError`` while down."""

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None: ...


class Pings:
    def __init__(self, tree: TopicTree, clock: Clock, link: PingLink | None) -> None:
        self.tree = tree
        self.clock = clock
        self.link = link
        self._waiting: dict[str, tuple[str, asyncio.Future[Pong]]] = {}

    async def ask(self, machine_id: str, within_s: float) -> Pong | None:
        """The machine's answer within ``within_s`` seconds, or None (silence, or no link)."""
        link = self.link
        if link is None:
            return None
        now = self.clock.now()
        lifetime = timedelta(seconds=max(within_s, PING_LIFETIME_S))
        ping = Ping.create(now=now, expires_at=now + lifetime)
        answer: asyncio.Future[Pong] = asyncio.get_running_loop().create_future()
        self._waiting[ping.id] = (machine_id, answer)
        topic = str(self.tree.command(machine_id, "ping"))
        try:
            async with asyncio.timeout(within_s):
                # QoS 0: the broker must not queue a ping for a machine that is not there.
                await link.publish(topic, ping.encode(), qos=0)
                return await answer
        except TimeoutError:
            log.info("ping %s to %s: no answer within %ss", ping.id, machine_id, within_s)
            return None
        except ConnectionError as exc:
            log.info("ping to %s not sent: %s", machine_id, exc)
            return None
        finally:
            self._waiting.pop(ping.id, None)

    def answered(self, machine_id: str, pong: Pong) -> bool:
        """Hand ``pong`` to the scan waiting for it; False if none here waits (or wrong machine)."""
        waiting = self._waiting.get(pong.ping_id)
        if waiting is None or waiting[0] != machine_id or waiting[1].done():
            return False
        waiting[1].set_result(pong)
        return True

    @property
    def waiting(self) -> int:
        return len(self._waiting)

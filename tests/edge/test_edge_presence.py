"""The cloud's presence on ``{prefix}/cloud``, and pings, as the whole agent sees them on each
broker (amqtt and the real mosquitto with the repo's ACL).

The agent's own resend timer is set to an hour, so only the presence hint can bring back events
that were published while no cloud was listening.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from vendgate.edge import EdgeConfig
from vendgate.protocol.mqtt import (
    Authorized,
    CloudPresence,
    Ended,
    Ping,
    Pong,
    Started,
    StatusState,
)

if TYPE_CHECKING:
    from conftest import Cloud, EdgeScene

AuthorizedNow = Callable[..., Authorized]
Waiter = Callable[..., Awaitable[None]]


def slow_resend_scene(
    scene: EdgeScene, edge_config: Callable[..., EdgeConfig], tmp_path: Path
) -> EdgeScene:
    """``scene`` with the edge's own re-send timer an hour long: only the hint can re-send.

    Built from the fixture's class: importing ``conftest`` at run time would find whichever
    test folder's conftest was imported first.
    """
    broker = scene.broker
    config = edge_config(
        broker.url, tmp_path, broker.machine_id, resend_interval_s="3600", **broker.agent_flags
    )
    return type(scene)(broker, config)


async def announce_cloud(cloud: Cloud, state: StatusState = StatusState.ONLINE) -> None:
    presence = CloudPresence.create(now=datetime.now(UTC), state=state, replica="test-cloud")
    await cloud.client.publish(
        str(cloud.tree.cloud_presence()), presence.encode(), qos=1, retain=True
    )


async def test_events_nobody_heard_are_resent_when_the_cloud_comes_online(
    scene: EdgeScene,
    edge_config: Callable[..., EdgeConfig],
    tmp_path: Path,
    authorized_now: AuthorizedNow,
    waiter: Waiter,
) -> None:
    scene = slow_resend_scene(scene, edge_config, tmp_path)
    reader = scene.reader()
    async with scene.agent(reader) as agent:
        async with scene.cloud() as sender:
            await sender.send(authorized_now("v1"))
            await sender.next(Started)
        # No cloud listens now: these are published to nobody and stay in the outbox.
        reader.vend(item=7, price=1500)
        reader.end()
        await waiter(lambda: any(e.name == "evt/ended" for e in agent.core.outbox))

        async with scene.cloud() as cloud:
            await announce_cloud(cloud)
            ended = await cloud.next(Ended, within_s=10)

    assert ended.vend_id == "v1"
    assert [(line.item, line.success) for line in ended.dispensed] == [(7, True)]


async def test_a_ping_is_answered_with_the_board_state(scene: EdgeScene) -> None:
    async with scene.cloud() as cloud, scene.agent() as agent:
        now = datetime.now(UTC)
        ping = Ping.create(now=now, expires_at=now + timedelta(seconds=30))
        await cloud.send(ping)
        pong = await cloud.next(Pong)

    assert pong.ping_id == ping.id
    assert (pong.boot_id, pong.board, pong.can_vend) == (agent.boot_id, "enabled", True)
    assert pong.open_vends == ()

"""The embedded MQTT broker: amqtt in the current event loop, on loopback.

Used by ``vendgate broker``, ``vendgate demo`` and the embedded test tier. amqtt speaks MQTT 3.1.1
only and ignores ``$share`` subscriptions (``../shared/research/feasibility.md``), which is why the
production tier runs Mosquitto instead. Passing ``plugins`` replaces amqtt's default set (event and
packet loggers, a ``$SYS`` publisher), which otherwise slows QoS 1 traffic about 2.6 times.

Like the repo's Mosquitto (``use_username_as_clientid true``) it ties a client's id to its
username, so that no client can take over another's session: a client that names a username must
use it as client id, or it is refused (``vendgate/_amqtt_identity.py``). Anonymous clients, and
clients that send no client id, connect as before.

Logins are off by default (anonymous, every topic: the demo and most tests). Given an
``authenticate(username, password)`` coroutine function (the cloud passes one that reads its
database), every client must log in, and the broker confines each to what Mosquitto's roles
allow (``vendgate.cloud.broker.machine_grants``: a machine only its own topics), except the
``cloud_users``, which may do anything. ``disconnect(username)`` drops that login's
connections at once (after a revoke: ``authenticate`` then refuses it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from types import TracebackType
from typing import Any, Self

from vendgate.protocol.mqtt import DEFAULT_PREFIX

log = logging.getLogger(__name__)


class BrokerStartError(RuntimeError):
    """The embedded broker could not start (usually: the port is taken)."""


# amqtt wants one auth plugin that says yes; logins are checked before amqtt sees a CONNECT.
ANONYMOUS_ONLY = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
TOPIC_CHECK = "vendgate._amqtt_identity.GrantsTopicPlugin"
CLOUD_USER = "vendgate-cloud"

# ``authenticate(username, password)``: True lets the client in.
Authenticate = Callable[[str, str], Awaitable[bool]]


def claims_another_identity(username: str | None, client_id: str | None, random_id: bool) -> bool:
    """True when a CONNECT names a username but a different client id of its own choosing.

    ``random_id``: the client sent none and the broker made one up, which names nobody's session.
    """
    return username is not None and not random_id and client_id != username


class EmbeddedBroker:
    """An amqtt broker bound to ``host:port`` (port 0 picks a free one) for as long as the block.

    ``async with EmbeddedBroker() as broker: broker.url`` gives ``mqtt://127.0.0.1:PORT``.
    It must be entered inside a running event loop (amqtt builds its servers there).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        authenticate: Authenticate | None = None,
        cloud_users: Collection[str] = (CLOUD_USER,),
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._broker: Any = None
        self.authenticate = authenticate
        self.cloud_users = frozenset(cloud_users)
        self.prefix = prefix

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the broker is not running")
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        # heavy import, only when a broker is wanted
        from vendgate._amqtt_identity import IdentityCheckingBroker

        plugins: dict[str, Any] = dict(ANONYMOUS_ONLY)
        if self.authenticate is not None:
            plugins[TOPIC_CHECK] = {"prefix": self.prefix, "cloud_users": sorted(self.cloud_users)}
        config = {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self._requested_port}"}
            },
            "plugins": plugins,
        }
        self._broker = IdentityCheckingBroker(config, authenticate=self.authenticate)
        try:
            await self._broker.start()
        except Exception as exc:  # amqtt wraps the OSError in its own BrokerError
            self._broker = None
            cause = exc.__cause__ or exc
            detail = getattr(cause, "strerror", None) or str(cause)
            raise BrokerStartError(
                f"cannot listen on {self.host}:{self._requested_port}: {detail}"
            ) from exc
        self.port = self._bound_port()
        log.info("embedded broker listening on %s", self.url)

    def _bound_port(self) -> int:
        # amqtt has no public API for the bound port; this private path is the one that works
        # on 0.12 (checked in feasibility.md). Fall back to the requested port if it moves.
        try:
            server = self._broker._servers["default"]
            return int(server.instance.sockets[0].getsockname()[1])
        except (AttributeError, KeyError, IndexError):
            if self._requested_port:
                return self._requested_port
            raise RuntimeError("cannot find the embedded broker's port") from None

    async def disconnect(self, username: str) -> int:
        """Drop every connection logged in as ``username`` now, without its will (as Mosquitto
        does on a revoke); returns how many there were. Its sessions stay."""
        if self._broker is None:
            raise RuntimeError("the broker is not running")
        dropped: int = await self._broker.disconnect(username)
        if dropped:
            log.info("dropped %d connection(s) of %s", dropped, username)
        return dropped

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
            log.info("embedded broker stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class EmbeddedAccounts:
    """``BrokerAccounts`` for an embedded broker running in the cloud's own process (the demo,
    the embedded test tier): the broker reads the logins from the cloud's database itself
    (``authenticate=fleet.authenticate``), so only the changes that must drop a connection
    have anything to do here."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self._broker = broker

    async def add(self, machine_id: str, password: str) -> None:
        await self._broker.disconnect(machine_id)  # a new password: log in again with it

    async def set_password(self, machine_id: str, password: str) -> None:
        await self._broker.disconnect(machine_id)

    async def disable(self, machine_id: str) -> None:
        await self._broker.disconnect(machine_id)

    async def enable(self, machine_id: str) -> None:
        return None

    async def remove(self, machine_id: str) -> None:
        await self._broker.disconnect(machine_id)

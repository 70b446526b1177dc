"""The embedded MQTT broker: amqtt in the current event loop, on loopback.

Used by ``vendgate broker``, ``vendgate demo`` and the embedded test tier. amqtt speaks MQTT 3.1.1
only and ignores ``$share`` subscriptions (``../shared/research/feasibility.md``), which is why the
production tier runs Mosquitto instead. Passing ``plugins`` replaces amqtt's default set (event and
packet loggers, a ``$SYS`` publisher), which otherwise slows QoS 1 traffic about 2.6 times.

Like the repo's Mosquitto (``use_username_as_clientid true``) it ties a client's id to its
username, so that no client can take over another's session: a client that names a username must
use it as client id, or it is refused (``vendgate/_amqtt_identity.py``). Anonymous clients, and
clients that send no client id, connect as before.

Logins are off by default (anonymous, every topic: ``vendgate broker`` without a database and
most tests). Given ``cloud_logins`` (the cloud's own users and passwords) or an
``authenticate(username, password)`` coroutine function for the machines (the cloud's
``Fleet.authenticate``, which reads its database), every client must log in. A cloud login is
checked here, against its password, and may do anything; every other login is a machine's,
asked of ``authenticate`` and confined to what Mosquitto's roles allow
(``vendgate.cloud.broker.machine_grants``: only its own topics). A machine whose id is a cloud
user's name therefore never gets the cloud's rights. ``authenticate`` is read on every CONNECT,
so it may be set once the broker runs (the cloud's ``Fleet`` exists only after the cloud has
started, and the cloud needs the broker to start). ``disconnect(username)`` drops that login's
connections at once (after a revoke: ``authenticate`` then refuses it); ``recheck()`` drops
those whose login no longer holds (a broker that nobody tells, ``vendgate broker --database``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self

from vendgate.protocol.mqtt import DEFAULT_PREFIX

log = logging.getLogger(__name__)


class BrokerStartError(RuntimeError):
    """The embedded broker could not start (usually: the port is taken)."""


class LoginsUnavailable(RuntimeError):
    """No machine login can be checked now (the broker has no ``authenticate`` yet)."""


# amqtt wants one auth plugin that says yes; logins are checked before amqtt sees a CONNECT.
ANONYMOUS_ONLY = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
TOPIC_CHECK = "vendgate._amqtt_identity.GrantsTopicPlugin"
# The cloud's own login where one is made up (the demo; `vendgate broker`'s default).
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
        cloud_logins: Mapping[str, str] | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._broker: Any = None
        # Machines' logins; read on every CONNECT (None on a guarded broker: "unavailable").
        self.authenticate = authenticate
        self._cloud_logins = dict(cloud_logins or {})
        # Decided here, once: a broker that checks logins never turns anonymous.
        self.guarded = authenticate is not None or bool(self._cloud_logins)
        self.prefix = prefix

    @property
    def cloud_users(self) -> frozenset[str]:
        """The logins that may do anything (the cloud's own)."""
        return frozenset(self._cloud_logins)

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the broker is not running")
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        # heavy import, only when a broker is wanted
        from vendgate._amqtt_identity import IdentityCheckingBroker

        plugins: dict[str, Any] = dict(ANONYMOUS_ONLY)
        if self.guarded:
            plugins[TOPIC_CHECK] = {"prefix": self.prefix, "cloud_users": sorted(self.cloud_users)}
        config = {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self._requested_port}"}
            },
            "plugins": plugins,
        }
        check = self.check_login if self.guarded else None
        self._broker = IdentityCheckingBroker(config, authenticate=check)
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

    async def check_login(self, username: str, password: str) -> bool:
        """A cloud user's password, else a machine's login as ``authenticate`` says."""
        if username in self._cloud_logins:
            expected = self._cloud_logins[username]
            return hmac.compare_digest(password.encode(), expected.encode())
        if self.authenticate is None:
            raise LoginsUnavailable("no machine logins to check yet")
        return await self.authenticate(username, password)

    async def disconnect(self, username: str) -> int:
        """Drop every connection logged in as ``username`` now, without its will (as Mosquitto
        does on a revoke); returns how many there were. Its sessions stay."""
        if self._broker is None:
            raise RuntimeError("the broker is not running")
        dropped: int = await self._broker.disconnect(username)
        if dropped:
            log.info("dropped %d connection(s) of %s", dropped, username)
        return dropped

    async def recheck(self) -> int:
        """Drop every connection whose login no longer holds (its machine's password rotated,
        revoked or deleted by a cloud this broker is not told of); returns how many. While the
        login store is down, nobody is dropped."""
        if self._broker is None:
            raise RuntimeError("the broker is not running")
        stale = set()
        for username, password in self._broker.logins():
            try:
                holds = await self.check_login(username, password)
            except Exception as exc:  # the store is down: keep who is in, as Mosquitto would
                log.warning("cannot recheck the logins now: %s", exc)
                return 0
            if not holds:
                stale.add(username)
        return sum([await self.disconnect(username) for username in sorted(stale)])

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

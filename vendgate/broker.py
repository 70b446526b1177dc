"""The embedded MQTT broker: amqtt in the current event loop, on loopback.

Used by ``vendgate broker``, ``vendgate demo`` and the embedded test tier. amqtt speaks MQTT 3.1.1
only and ignores ``$share`` subscriptions (``../shared/research/feasibility.md``), which is why the
production tier runs Mosquitto instead. Passing ``plugins`` replaces amqtt's default set (event and
packet loggers, a ``$SYS`` publisher), which otherwise slows QoS 1 traffic about 2.6 times.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Self

log = logging.getLogger(__name__)


class BrokerStartError(RuntimeError):
    """The embedded broker could not start (usually: the port is taken)."""


ANONYMOUS_ONLY = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}


class EmbeddedBroker:
    """An amqtt broker bound to ``host:port`` (port 0 picks a free one) for as long as the block.

    ``async with EmbeddedBroker() as broker: broker.url`` gives ``mqtt://127.0.0.1:PORT``.
    It must be entered inside a running event loop (amqtt builds its servers there).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._broker: Any = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the broker is not running")
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        from amqtt.broker import Broker  # heavy import, only when a broker is wanted

        config = {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self._requested_port}"}
            },
            "plugins": ANONYMOUS_ONLY,
        }
        self._broker = Broker(config)
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

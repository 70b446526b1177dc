"""The ``BrokerAccounts`` a cloud replica runs with, chosen by its settings.

- ``DynsecOnDemand``: Mosquitto's dynamic security, one short admin connection per change.
  Operators change machines rarely; a connection held open would need its own reconnect logic
  and would hold the admin login (its client id) on every replica at once.
- ``DatabaseLogins``: the broker reads the logins itself (the embedded broker checks
  ``Fleet.authenticate``) or a person edits its password file: nothing to tell it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import unquote, urlsplit

from ._accounts import BrokerAccountError, BrokerAccounts
from ._dynsec import DynsecAccounts


class DynsecOnDemand:
    def __init__(self, admin_url: str, prefix: str, timeout: float = 10.0) -> None:
        parts = urlsplit(admin_url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.username or not parts.password:
            raise ValueError("the broker admin URL must be mqtt://user:password@host[:port]")
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 1883
        self._username, self._password = unquote(parts.username), unquote(parts.password)
        self._prefix, self._timeout = prefix, timeout

    async def _do(self, change: Callable[[DynsecAccounts], Awaitable[None]]) -> None:
        accounts = DynsecAccounts(
            self._host,
            self._port,
            username=self._username,
            password=self._password,
            prefix=self._prefix,
            timeout=self._timeout,
        )
        try:
            async with accounts:
                await change(accounts)
        except BrokerAccountError:
            raise
        except OSError as error:
            raise BrokerAccountError(
                f"cannot reach the broker at {self._host}:{self._port}: {error}"
            ) from None

    async def add(self, machine_id: str, password: str) -> None:
        await self._do(lambda a: a.add(machine_id, password))

    async def set_password(self, machine_id: str, password: str) -> None:
        await self._do(lambda a: a.set_password(machine_id, password))

    async def disable(self, machine_id: str) -> None:
        await self._do(lambda a: a.disable(machine_id))

    async def enable(self, machine_id: str) -> None:
        await self._do(lambda a: a.enable(machine_id))

    async def remove(self, machine_id: str) -> None:
        await self._do(lambda a: a.remove(machine_id))


class DatabaseLogins:
    """Nothing to tell the broker: it reads the cloud's database (or a person edits its file)."""

    async def add(self, machine_id: str, password: str) -> None:
        return None

    async def set_password(self, machine_id: str, password: str) -> None:
        return None

    async def disable(self, machine_id: str) -> None:
        return None

    async def enable(self, machine_id: str) -> None:
        return None

    async def remove(self, machine_id: str) -> None:
        return None


def accounts_for(admin_url: str, prefix: str) -> BrokerAccounts:
    return DynsecOnDemand(admin_url, prefix) if admin_url else DatabaseLogins()

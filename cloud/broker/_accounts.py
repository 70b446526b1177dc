"""What the cloud asks of a broker for its machines' logins, whatever the broker is."""

from __future__ import annotations

from typing import Protocol


class BrokerAccountError(RuntimeError):
    """The broker refused or did not answer an account change; the text says which and why."""


class UnknownMachine(BrokerAccountError):
    """The broker has no account for this machine (``set_password``, ``disable``, ``enable``)."""


class BrokerAccounts(Protocol):
    """A machine's broker login: username = client id = machine id.

    ``add`` of an existing machine sets its password (and repairs its access); a disabled
    machine stays disabled until ``enable``. ``disable`` refuses the login and drops the
    machine's connections at once; ``remove`` deletes the account and is a no-op for one that
    is gone. Changing a password also drops the machine's connections (it must log in again).
    """

    async def add(self, machine_id: str, password: str) -> None: ...

    async def set_password(self, machine_id: str, password: str) -> None: ...

    async def disable(self, machine_id: str) -> None: ...

    async def enable(self, machine_id: str) -> None: ...

    async def remove(self, machine_id: str) -> None: ...

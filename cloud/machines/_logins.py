"""Whether a machine's broker login holds: what a broker that reads the cloud's database asks.

One function for the cloud's ``Fleet.authenticate`` (the embedded broker in the cloud's own
process) and ``vendgate broker --database`` (the embedded broker on its own, beside a cloud).
"""

from __future__ import annotations

from vendgate.cloud.db import Machine, MachineCredential, SessionFactory, transaction
from vendgate.cloud.digests import matches


async def machine_login_holds(sessions: SessionFactory, username: str, password: str) -> bool:
    """A live machine named ``username``, its current password, not revoked."""
    async with transaction(sessions) as db:
        row = await db.get(MachineCredential, username)
        machine = await db.get(Machine, username)
    if row is None or row.revoked_at is not None or machine is None:
        return False
    return machine.deleted_at is None and matches(password, row.digest)

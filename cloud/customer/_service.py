"""Starting a purchase (scan or check-in), what the customer's status page shows, and the
customer routes' service (``CustomerService``: the scan and the status page, rate limited)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from vendgate.cloud.db import ProcessedMessage, SessionFactory, VendSession, transaction
from vendgate.cloud.errors import (
    MachineUnavailable,
    NotFound,
    PaymentStartFailed,
    Unavailability,
)
from vendgate.cloud.machines import Offer, Pings, get_machine, offer_of, slots_of, unavailability
from vendgate.cloud.settings import TimingSettings
from vendgate.cloud.vends import Decision, VendService, VendState, lines_of, open_vend
from vendgate.protocol import Clock, Money

from ._limits import CustomerLimits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started:
    vend_id: str
    redirect_url: str | None


@dataclass  # not frozen: the scan benchmark swaps its timing
class Purchases:
    """Starts a purchase (a scan, a Vipps check-in): refuses what cannot be sold now, pings the
    machine, opens the session, and has the vend service create its payment."""

    sessions: SessionFactory
    vends: VendService
    pings: Pings
    _: KW_ONLY
    clock: Clock
    timing: TimingSettings

    async def start(
        self,
        machine_id: str,
        *,
        customer_token: str | None = None,
        dedup_key: str | None = None,
        admit: Callable[[Offer], None] | None = None,
    ) -> Started:
        """Open a session and create its payment, or refuse (offline, busy, disabled, silent).

        ``admit`` sees the machine once it is known to exist, before anything else is read or
        written, and may refuse by raising (the scan's rate limit). Before anything is written
        the machine is pinged: no answer within ``ping_timeout``, no session and no payment.
        """
        if self.timing.ping_timeout > 0:
            name = await self._check(machine_id, admit)
            await self._ask(machine_id, name)
            admit = None  # taken once, above
        opened = await self._open(machine_id, customer_token, dedup_key, admit)
        # The customer waits for the redirect: one short create attempt; the reconciler retries.
        decision = await self.vends.work_on(opened, scan=True)
        vend = decision.snapshot
        # Still creating (Vipps did not answer; the reconciler retries) or refused outright.
        if vend.state in (VendState.CREATING, VendState.CLOSED):
            raise PaymentStartFailed("Vipps did not take the payment; please try again shortly")
        return Started(vend.id, vend.redirect_url)

    async def _check(self, machine_id: str, admit: Callable[[Offer], None] | None) -> str:
        """Refuse what the database already knows (read only); the machine's name otherwise."""
        async with transaction(self.sessions) as db:
            return (await self._available(db, machine_id, admit)).name

    async def _ask(self, machine_id: str, name: str) -> None:
        """Refuse unless the machine answers the ping now, able to vend."""
        pong = await self.pings.ask(machine_id, self.timing.ping_timeout)
        if pong is None:
            log.info("scan at %s refused: no answer to the ping", machine_id)
            raise MachineUnavailable(name, Unavailability.OFFLINE)
        if not pong.can_vend:
            log.info(
                "scan at %s refused: board %s, open vends %s",
                machine_id,
                pong.board,
                ",".join(pong.open_vends) or "-",
            )
            # A vend still open there is "busy"; anything else (board silent, reader disabled)
            # is out of order, which the customer sees as offline.
            reason = Unavailability.BUSY if pong.open_vends else Unavailability.OFFLINE
            raise MachineUnavailable(name, reason)

    async def _available(
        self,
        db: AsyncSession,
        machine_id: str,
        admit: Callable[[Offer], None] | None = None,
    ) -> Offer:
        """The machine and what it sells, or ``MachineUnavailable`` (offline, busy...)."""
        offer = await offer_of(db, machine_id)
        if admit is not None:
            admit(offer)
        if offer.max_price is None:
            raise MachineUnavailable(offer.name, Unavailability.DISABLED)
        now = self.clock.now()
        reason = unavailability(offer, now, self.timing.heartbeat_window, offer.busy)
        if reason is not None:
            raise MachineUnavailable(offer.name, reason)
        return offer

    async def _open(
        self,
        machine_id: str,
        token: str | None,
        dedup_key: str | None,
        admit: Callable[[Offer], None] | None,
    ) -> Decision:
        """Open the session and decide its first step (create the payment) in one transaction."""
        now = self.clock.now()
        async with transaction(self.sessions) as db:
            # Again: the machine may have become busy or offline while it was pinged.
            offer = await self._available(db, machine_id, admit)
            if dedup_key is not None:
                db.add(ProcessedMessage(key=dedup_key, received_at=now))
            try:
                vend_id = await open_vend(
                    db,
                    offer.id,
                    offer.currency,
                    offer.on_sale,
                    now,
                    self.timing,
                    mode="redirect" if token is None else "callback",
                    customer_token=token,
                )
            except IntegrityError as exc:
                # Another request opened a session at this machine a moment ago.
                raise MachineUnavailable(offer.name, Unavailability.BUSY) from exc
            decision = await self.vends.advance_in(db, vend_id)
        assert decision is not None  # just written, in this transaction
        return decision


# -- the status page -------------------------------------------------------------------------


class StatusView(msgspec.Struct, kw_only=True):
    """What the status page shows; the JSON endpoint returns exactly this."""

    state: str  # waiting | choose | finishing | paid | not_charged | cancelled
    final: bool
    machine: str
    reserved: str
    paid: str | None = None
    released: str | None = None
    items: list[str] = msgspec.field(default_factory=list)


def customer_state(vend: VendSession) -> str:
    state = VendState(vend.state)
    if state in (VendState.CREATING, VendState.AWAITING_APPROVAL):
        return "waiting"
    if state in (VendState.AUTHORIZED, VendState.VENDING):
        return "choose"
    if state is VendState.SETTLING:
        return "finishing"
    if vend.outcome == "paid":
        return "paid"
    return "not_charged" if vend.outcome == "not_charged" else "cancelled"


async def status_view(sessions: SessionFactory, token: str) -> StatusView:
    async with transaction(sessions) as db:
        query = select(VendSession).where(VendSession.status_token == token)
        vend = (await db.exec(query)).first()
        if vend is None:
            raise NotFound("no such purchase")
        machine = await get_machine(db, vend.machine_id)
        names = {slot.item: slot.name for slot in await slots_of(db, vend.machine_id)}
        lines = await lines_of(db, vend)
    currency = vend.currency
    state = customer_state(vend)
    view = StatusView(
        state=state,
        final=state in ("paid", "not_charged", "cancelled"),
        machine=machine.name,
        reserved=Money(vend.authorized_amount or vend.max_amount, currency).format(),
        items=[names.get(line.item, f"Item {line.item}") for line in lines if line.success],
    )
    if state == "paid":
        view.paid = Money(vend.capture_amount or 0, currency).format()
        view.released = Money(vend.cancel_amount or 0, currency).format()
    return view


@dataclass(frozen=True)
class CustomerService:
    """What the customer routes do: a scan (limited per machine) and the status page and its
    JSON (limited per token). The routes get this one object, by injection."""

    purchases: Purchases
    sessions: SessionFactory
    limits: CustomerLimits
    clock: Clock

    async def scan(self, machine_id: str) -> Started:
        """Rate limited per known machine (429, nothing created); unknown ids stay 404."""
        now = self.clock.now()
        return await self.purchases.start(
            machine_id, admit=lambda machine: self.limits.admit_scan(machine, now)
        )

    async def status(self, token: str) -> StatusView:
        self.limits.admit_status(token, self.clock.now())
        return await status_view(self.sessions, token)

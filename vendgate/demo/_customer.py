"""Simulated customers: a phone (an HTTP client) and a finger on the machine's keypad.

The phone does what a person's does: opens the sticker's URL on the cloud, follows the
redirect to Vipps (the simulator's landing page), presses Approve there, lands back on the
cloud's status page and watches it (its JSON). The finger presses the board simulator's
keypad. Only the bookkeeping looks behind the scenes: the payment's reference comes from the
simulator (the customer never sees it), and the amounts are read back from its ``GET``
payment, as an auditor would.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from vendgate.boardsim import VendOutcome
from vendgate.cloud.vipps import VippsClient

from ._machines import SimulatedMachine, vend_ids_at
from ._plan import Order, Purchase, Scenario, settlement_text
from ._services import Services

STEP_LIMIT_S = 20.0
POLL_S = 0.1
DATA_STATE = re.compile(r'id="status" data-state="([a-z_]+)"')


class CustomerError(RuntimeError):
    """The purchase did not go as a customer would expect (wrong page, no redirect...)."""


@dataclass
class Shop:
    """What every customer shares: the services, the machines, a phone, a way to talk."""

    services: Services
    machines: dict[str, SimulatedMachine]
    http: httpx.AsyncClient
    vipps: VippsClient
    say: Callable[[str], None]
    # Set while a customer stands at the machine with a session open (the busy scan waits).
    in_use: dict[str, asyncio.Event] = field(default_factory=dict)

    def occupied(self, machine_id: str) -> asyncio.Event:
        return self.in_use.setdefault(machine_id, asyncio.Event())


@dataclass
class Visit:
    """One customer's purchase in progress."""

    shop: Shop
    order: Order
    purchase: Purchase
    status_url: str = ""

    @property
    def machine(self) -> SimulatedMachine:
        return self.shop.machines[self.order.machine.machine_id]

    def step(self, text: str) -> None:
        self.purchase.steps.append(text)

    async def scan(self) -> httpx.Response:
        """Open the sticker's URL (the cloud's scan link for this machine)."""
        url = f"{self.shop.services.cloud_url}/m/{self.purchase.machine_id}"
        return await self.shop.http.get(url)

    async def scan_and_approve(self) -> None:
        scanned = await self.scan()
        if scanned.status_code != 302:
            raise CustomerError(f"the scan answered {scanned.status_code}, not a redirect")
        self.step("scanned")
        landing = httpx.URL(scanned.headers["location"])
        token = landing.params["token"]
        self.purchase.reference = self.shop.services.sim.payments.by_token(token).ledger.reference
        self.status_url = await approve(self.shop.http, landing, token)
        self.step("approved")

    async def status(self) -> dict[str, Any]:
        response = await self.shop.http.get(f"{self.status_url}/state")
        response.raise_for_status()
        state: dict[str, Any] = response.json()
        return state

    async def wait_for_page(self, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async with asyncio.timeout(STEP_LIMIT_S):
            while not done(state := await self.status()):  # noqa: ASYNC110 - as a phone polls
                await asyncio.sleep(POLL_S)
        return state

    async def at_the_machine(self) -> None:
        """The status page says "choose", and the machine shows the credit."""
        await self.wait_for_page(lambda state: state["state"] == "choose")
        async with asyncio.timeout(STEP_LIMIT_S):
            await self.machine.board.wait_session()

    async def press(self, selection: int) -> VendOutcome:
        async with asyncio.timeout(STEP_LIMIT_S):
            return await self.machine.board.select(selection)

    async def finish(self) -> None:
        """Watch the status page until it is final; then check the money with Vipps."""
        final = await self.wait_for_page(lambda state: bool(state["final"]))
        self.purchase.outcome = final["state"]
        await read_back(self.purchase, self.shop)


async def approve(http: httpx.AsyncClient, landing: httpx.URL, token: str) -> str:
    """Press Approve on the Vipps landing page; Vipps sends the phone back to the status page."""
    page = await http.get(landing)
    if page.status_code != 200 or 'id="approve"' not in page.text:
        raise CustomerError(f"the Vipps page offers no Approve button ({page.status_code})")
    decided = await http.post(landing.join(f"/sim/landing/{token}/approve"))
    if decided.status_code != 303:
        raise CustomerError(f"approving answered {decided.status_code}, not 303")
    return str(decided.headers["location"])


async def read_back(purchase: Purchase, shop: Shop) -> None:
    """The amounts as Vipps has them (``GET`` payment) and whether a receipt was posted."""
    if purchase.reference is None:
        return
    aggregate = (await shop.vipps.epayment.get_payment(purchase.reference)).aggregate
    purchase.authorized = aggregate.authorized_amount.value
    purchase.captured = aggregate.captured_amount.value
    purchase.cancelled = aggregate.cancelled_amount.value
    purchase.receipt = ("ECOM", purchase.reference) in shop.services.sim.receipts.receipts


# -- the scenarios ----------------------------------------------------------------------------


async def normal_purchase(visit: Visit) -> None:
    slot = visit.order.slot
    assert slot is not None, "a normal purchase names a selection"
    visit.purchase.item, visit.purchase.price = slot.item, slot.price
    await visit.scan_and_approve()
    await visit.at_the_machine()
    outcome = await visit.press(slot.number)
    if outcome.result != "success":
        raise CustomerError(f"selection {slot.number} ended in {outcome.result}")
    visit.step(f"item {slot.item} dropped")
    await visit.finish()


async def jammed_motor(visit: Visit) -> None:
    slot = visit.order.slot
    assert slot is not None, "a jam names the selection that sticks"
    visit.purchase.item, visit.purchase.price = slot.item, slot.price
    await visit.scan_and_approve()
    await visit.at_the_machine()
    visit.machine.board.jam(slot.number)
    outcome = await visit.press(slot.number)
    visit.step(f"item {slot.item} jammed ({outcome.result})")
    await visit.finish()


async def walk_away(visit: Visit) -> None:
    await visit.scan_and_approve()
    await visit.at_the_machine()
    visit.machine.board.walk_away()
    visit.step("walked away")
    visit.shop.occupied(visit.purchase.machine_id).set()
    await visit.finish()
    visit.step("timed out")


async def busy_scan(visit: Visit) -> None:
    """Scan while another customer is at the machine: refused, and no payment is created."""
    machine_id = visit.purchase.machine_id
    async with asyncio.timeout(STEP_LIMIT_S):
        await visit.shop.occupied(machine_id).wait()
    cloud = visit.shop.services.cloud
    before = await vend_ids_at(cloud, machine_id)
    refused = await visit.scan()
    visit.step("scanned")
    match = DATA_STATE.search(refused.text)
    visit.purchase.outcome = match.group(1) if match else f"HTTP {refused.status_code}"
    visit.step(f"refused ({refused.status_code} {visit.purchase.outcome})")
    # A payment starts with a vend session: any new one is a payment that must not exist.
    created = sorted(await vend_ids_at(cloud, machine_id) - before)
    if created:
        visit.purchase.reference = created[0]
        await read_back(visit.purchase, visit.shop)


SCENARIOS: dict[Scenario, Callable[[Visit], Awaitable[None]]] = {
    Scenario.NORMAL: normal_purchase,
    Scenario.JAM: jammed_motor,
    Scenario.TIMEOUT: walk_away,
    Scenario.BUSY: busy_scan,
}


async def serve(shop: Shop, order: Order) -> Purchase:
    """Send one customer; whatever goes wrong is recorded in the purchase, never raised."""
    purchase = Purchase(order.machine.machine_id, order.scenario.value)
    visit = Visit(shop, order, purchase)
    try:
        await SCENARIOS[order.scenario](visit)
    except Exception as exc:  # a broken part must show in the report, not stop the demo
        purchase.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        purchase.steps.append(f"failed: {purchase.error}")
    else:
        purchase.steps.append(settlement_text(purchase))
    shop.say(f"[{purchase.machine_id}] {order.scenario.label}: " + " → ".join(purchase.steps))
    return purchase

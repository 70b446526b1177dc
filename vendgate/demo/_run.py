"""The demo run: start the embedded tier and the machines, send the customers, check the money.

Everything lives in one event loop of one process, in a temporary folder removed at the end.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from vendgate.cloud.vipps import VippsClient, VippsSettings

from ._customer import Shop, read_back, serve
from ._machines import SELECTION_TIMEOUT_S, SimulatedMachine, fleet
from ._plan import (
    MACHINES,
    MachineSpec,
    Order,
    Purchase,
    extra_orders,
    money,
    problems,
    report_json,
    scenario_orders,
    summary_table,
)
from ._services import Services, embedded_services, strangers_refused

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoOptions:
    purchases: int = 0  # normal purchases to make after the four scenarios
    machines: tuple[MachineSpec, ...] = MACHINES


@dataclass(frozen=True)
class DemoReport:
    checked: list[tuple[Purchase, list[str]]]  # every purchase with what is wrong with it
    seconds: float

    @property
    def ok(self) -> bool:
        return all(not found for _, found in self.checked)

    def table(self) -> str:
        return summary_table(self.checked)

    def json(self) -> str:
        return report_json(self.checked)

    def verdict(self) -> str:
        failed = sum(1 for _, found in self.checked if found)
        count = len(self.checked)
        if failed:
            return f"{failed} of {count} purchases broke the rules ({self.seconds:.1f} s)"
        return f"all {count} purchases as expected: the money rules held ({self.seconds:.1f} s)"


async def run_demo(options: DemoOptions, say: Say) -> DemoReport:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vendgate-demo-") as folder:
        async with embedded_services(Path(folder)) as services:
            describe_services(services, say)
            async with (
                fleet(options.machines, services.cloud, Path(folder)) as machines,
                httpx.AsyncClient(timeout=10) as http,
            ):
                describe_machines(machines.values(), say)
                refused = await strangers_refused(services.broker, options.machines[0].machine_id)
                say(f"broker refuses strangers: {refused}")
                vipps = VippsClient(VippsSettings(base_url=services.sim_url), http)
                shop = Shop(services, machines, http, vipps, say)
                purchases = await customers(shop, options)
                for purchase in purchases:  # the final word on the money is Vipps'
                    await read_back(purchase, shop)
    prices = {spec.machine_id: spec.max_price for spec in options.machines}
    checked = [(p, problems(p, prices[p.machine_id])) for p in purchases]
    return DemoReport(checked, time.monotonic() - started)


async def customers(shop: Shop, options: DemoOptions) -> list[Purchase]:
    shop.say(
        "customers: a normal purchase, a jammed motor, a walk-away (the machine gives up after "
        f"{SELECTION_TIMEOUT_S:g} s) and a scan of that busy machine"
    )
    purchases = list(
        await asyncio.gather(*(serve(shop, o) for o in scenario_orders(options.machines)))
    )
    if options.purchases:
        shop.say(f"{options.purchases} more normal purchases, the machines side by side")
        purchases += await side_by_side(shop, extra_orders(options.purchases, options.machines))
    return purchases


async def side_by_side(shop: Shop, orders: Sequence[Order]) -> list[Purchase]:
    """One customer after another at each machine, all machines at once."""
    queues: dict[str, list[Order]] = {}
    for order in orders:
        queues.setdefault(order.machine.machine_id, []).append(order)

    async def queue(at_machine: list[Order]) -> list[Purchase]:
        return [await serve(shop, order) for order in at_machine]

    done = await asyncio.gather(*(queue(q) for q in queues.values()))
    return [purchase for at_machine in done for purchase in at_machine]


def describe_services(services: Services, say: Say) -> None:
    say(
        f"broker          {services.broker_url} (amqtt, in process; machines log in with the "
        "passwords the cloud issued)"
    )
    say(f"Vipps simulator {services.sim_url}")
    say(f"cloud           {services.cloud_url} (SQLite in a temporary folder)")


def describe_machines(machines: Iterable[SimulatedMachine], say: Say) -> None:
    for machine in machines:
        spec, device = machine.spec, machine.board.device_path
        say(f"[{spec.machine_id}] {spec.name}: board on {device}, edge agent online")
        say("     " + ", ".join(f"{s.number}: {s.name} {money(s.price)}" for s in spec.slots))

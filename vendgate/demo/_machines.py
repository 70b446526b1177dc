"""A simulated vending machine: the board simulator on a pty and the edge agent on its bus.

Both run in this event loop: ``BoardSim`` drives the VMC from the pty's master end, and the
agent (``build_agent``, the real ``SerialCashless`` reader and SQLite outbox) opens the slave
end and talks MQTT to the embedded broker. The machine is created as an operator creates one
(``Fleet.create``, what ``POST /api/v1/machines`` runs), and its agent logs in with the broker
login issued then. The cloud learns the machine's planogram first, so
the agent's retained ``online`` status finds a machine it knows, and sends it to the agent
when the agent says ``hello``: the agent prices every vend by it (and refuses every vend until
it has it), so a machine counts as ready once that ``cmd/config`` has been published.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, select

from vendgate.boardsim import BoardSim, Machine, VmcConfig
from vendgate.cloud.app import CloudParts
from vendgate.cloud.db import OutboxCommand, VendSession, transaction
from vendgate.cloud.machines import BrokerLogin, Fleet, MachineBody, SlotBody, get_machine
from vendgate.edge import EdgeConfig, build_agent

from ._plan import CURRENCY, VAT_RATE, MachineSpec

READY_LIMIT_S = 20.0
# The walk-away scenario waits this long for the reader to give up: short, but long enough
# for a customer who is only slow to press a selection.
SELECTION_TIMEOUT_S = 4.0
BOARD = VmcConfig(poll_interval_s=0.1, dispense_s=0.3)


@dataclass(frozen=True)
class SimulatedMachine:
    spec: MachineSpec
    board: BoardSim

    @property
    def machine_id(self) -> str:
        return self.spec.machine_id


async def register(fleet: Fleet, spec: MachineSpec) -> BrokerLogin:
    """What an operator does with ``POST /api/v1/machines``: the machine, its planogram and
    its broker login (the password, shown this once, goes to the machine)."""
    slots = [
        SlotBody(item=s.item, name=s.name, price=s.price, vat_rate=VAT_RATE) for s in spec.slots
    ]
    body = MachineBody(id=spec.machine_id, name=spec.name, currency=CURRENCY, slots=slots)
    return (await fleet.create(body)).mqtt


async def is_online(cloud: CloudParts, machine_id: str) -> bool:
    async with transaction(cloud.sessions) as db:
        return (await get_machine(db, machine_id)).online


async def has_its_planogram(cloud: CloudParts, machine_id: str) -> bool:
    """Online, and the planogram sent on its hello published: commands after it find it applied
    (one ``cmd/config`` came from ``register``, before the agent was connected to receive it)."""
    if not await is_online(cloud, machine_id):
        return False
    query = select(OutboxCommand.id).where(
        OutboxCommand.machine_id == machine_id,
        col(OutboxCommand.topic).endswith("/cmd/config"),
        col(OutboxCommand.published_at).is_not(None),
    )
    async with transaction(cloud.sessions) as db:
        return len((await db.exec(query)).all()) >= 2


async def vend_ids_at(cloud: CloudParts, machine_id: str) -> set[str]:
    """Every vend session (= payment reference) the cloud has opened at the machine."""
    query = select(VendSession.id).where(VendSession.machine_id == machine_id)
    async with transaction(cloud.sessions) as db:
        return set((await db.exec(query)).all())


@contextlib.asynccontextmanager
async def running_machine(
    spec: MachineSpec, cloud: CloudParts, folder: Path
) -> AsyncIterator[SimulatedMachine]:
    """The machine powered on, its agent connected, and the cloud seeing it online."""
    login = await register(cloud.fleet, spec)
    async with (
        BoardSim(Machine(spec.slots), BOARD) as board,
        edge_agent(login, board, folder),
    ):
        async with asyncio.timeout(READY_LIMIT_S):
            await board.wait_ready()
            while not await has_its_planogram(cloud, spec.machine_id):  # noqa: ASYNC110 - rows
                await asyncio.sleep(0.05)
        yield SimulatedMachine(spec, board)


@contextlib.asynccontextmanager
async def edge_agent(login: BrokerLogin, board: BoardSim, folder: Path) -> AsyncIterator[None]:
    """The agent as ``vendgate edge claim`` would set it up: the issued login, the broker's URL."""
    flags = {
        "machine_id": login.username,
        "mqtt_url": login.mqtt_url,
        "mqtt_password": login.password,
        "serial": board.device_path,
        "data_dir": str(folder / f"edge-{login.username}"),
        "currency": CURRENCY,
        "selection_timeout_s": str(SELECTION_TIMEOUT_S),
        "resend_interval_s": "1",
        "telemetry_interval_s": "10",
        "reconnect_min_s": "0.2",
        "reconnect_max_s": "2",
    }
    agent = build_agent(EdgeConfig.load(flags, {}))  # the demo ignores VENDGATE_* variables
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(READY_LIMIT_S):
            await running


@contextlib.asynccontextmanager
async def fleet(
    specs: Sequence[MachineSpec], cloud: CloudParts, folder: Path
) -> AsyncIterator[dict[str, SimulatedMachine]]:
    """Every machine running, keyed by machine id; stopped in reverse order."""
    async with contextlib.AsyncExitStack() as stack:
        machines = {}
        for spec in specs:
            running = running_machine(spec, cloud, folder)
            machines[spec.machine_id] = await stack.enter_async_context(running)
        yield machines

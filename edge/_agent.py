"""The edge agent: the pure core wired to the reader, the MQTT link, the outbox and the clock.

One task handles inputs strictly one at a time, performing each step's actions in order: the
``Persist`` (a SQLite commit with fsync, in a worker thread so the reader's bus replies are never
held up) completes before anything is published or a session begins. Everything else only
queues inputs: MQTT messages and connection changes, reader events, the resend and telemetry
timers.

``faults`` (``_faults``, no-op by default) is called right after each commit that wrote an event,
before it is published: the crash tests' seam.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import TypeVar

from vendgate.edge._actions import (
    Action,
    ApplySettings,
    CancelSession,
    Log,
    Persist,
    Publish,
    SetWill,
    StartSession,
)
from vendgate.edge._config import EdgeConfig
from vendgate.edge._core import AgentCore
from vendgate.edge._device import CashlessDevice, board_of, to_input
from vendgate.edge._faults import Faults, after_outbox_write, no_faults
from vendgate.edge._inputs import (
    BeginFailed,
    Booted,
    CloudPresenceArrived,
    CommandArrived,
    Connected,
    Connecting,
    Disconnected,
    Input,
    ResendDue,
    ShuttingDown,
    TelemetryDue,
)
from vendgate.edge._logs import log_event
from vendgate.edge._mqtt import LinkCallbacks, MqttLink
from vendgate.edge._outbox import SqliteStore, Store
from vendgate.edge._settings import Settings
from vendgate.edge.cashless import CashlessConfig, MdbError, ReaderEvent, SerialCashless
from vendgate.protocol import Clock, SystemClock, reconnect_delay
from vendgate.protocol.mqtt import WIRE_VERSION, ContractError, ParsedTopic, TopicKind

__all__ = ["EdgeAgent", "build_agent"]

T = TypeVar("T")
GOODBYE_TIMEOUT_S = 2.0
READER_RETRY_MAX_S = 30.0

# Reader events worth a line at INFO; the rest (requests, approvals) are DEBUG, the core logs
# what they mean for the vend.
_NOTABLE_READER_EVENTS = frozenset(
    {"BoardReset", "LinkLost", "LinkRestored", "ReaderEnabled", "ReaderDisabled", "DenialSent"}
)


class _Stop:
    """Queued last: the input task finishes what is before it, then returns."""


@dataclass(frozen=True)
class _Awaited:
    """An input whose sender waits until its actions are done (the will before a connect)."""

    input: Input
    done: asyncio.Future[None]


_QueueItem = Input | Callable[[], Input] | _Stop | _Awaited


class EdgeAgent:
    """One machine's agent; ``await agent.run(stop)`` until ``stop`` is set."""

    def __init__(
        self,
        config: EdgeConfig,
        *,
        device: CashlessDevice,
        store: Store,
        clock: Clock | None = None,
        faults: Faults = no_faults,
    ) -> None:
        self.config = config
        self.device = device
        self.store = store
        self.clock = clock or SystemClock()
        self.boot_id = uuid.uuid4().hex[:16]
        self.faults = faults
        self._started = self.clock.monotonic()
        self._inputs: asyncio.Queue[_QueueItem] = asyncio.Queue()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vendgate-outbox")
        self._settings = Settings(
            config.selection_timeout_s, config.resend_interval_s, config.telemetry_interval_s
        )
        self._core: AgentCore | None = None
        self.link = MqttLink(
            url=config.mqtt,
            client_id=config.machine_id,
            subscriptions=[(str(f), 1) for f in config.topics.edge_filters(config.machine_id)],
            callbacks=LinkCallbacks(
                self._on_connected, self._on_disconnected, self._on_message, self._before_connect
            ),
            keepalive_s=config.keepalive_s,
            reconnect_min_s=config.reconnect_min_s,
            reconnect_max_s=config.reconnect_max_s,
            ca_file=config.mqtt_ca_file,
        )

    @property
    def core(self) -> AgentCore:
        if self._core is None:
            raise RuntimeError("the agent has not booted")
        return self._core

    # -- lifetime -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._boot()
            await self._serve(stop)
        finally:
            await self._in_writer(self.store.close)
            self._writer.shutdown(wait=True)

    async def _boot(self) -> None:
        retention = timedelta(days=self.config.vend_retention_days)
        await self._in_writer(self.store.forget_vends, self.clock.now() - retention)
        snapshot = await self._in_writer(self.store.load)
        self._core = AgentCore(
            machine_id=self.config.machine_id,
            currency=self.config.currency,
            snapshot=snapshot,
            defaults=self._settings,
            begin_timeout_s=self.config.begin_timeout_s,
        )
        log_event(self.config.machine_id, Log.info("agent.config", **self.config.describe()))
        await self._handle(Booted(self.boot_id, self._versions()))

    def _versions(self) -> dict[str, str]:
        return {
            "agent": _agent_version(),
            "wire": str(WIRE_VERSION),
            "python": platform.python_version(),
        }

    async def _serve(self, stop: asyncio.Event) -> None:
        workers = [
            asyncio.create_task(self._process_inputs(), name="inputs"),
            asyncio.create_task(self.link.run(), name="mqtt"),
            asyncio.create_task(self._run_reader(), name="reader"),
            asyncio.create_task(self._every(self._resend_interval, self._resend_due)),
            asyncio.create_task(self._every(self._telemetry_interval, self._telemetry_due)),
        ]
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*workers, stopping], return_when=asyncio.FIRST_COMPLETED)
        failed = [task for task in done if task is not stopping]
        try:
            if not failed:
                await self._say_goodbye(workers[0])
        finally:
            for task in [*workers, stopping]:
                task.cancel()
            await asyncio.gather(*workers, stopping, return_exceptions=True)
        for task in failed:
            task.result()  # re-raise what broke the agent (a disk error, say): systemd restarts

    async def _say_goodbye(self, input_task: asyncio.Task[None]) -> None:
        """Finish queued inputs, publish ``offline`` ourselves, disconnect cleanly."""
        self._inputs.put_nowait(_Stop())
        await input_task
        for action in self.core.handle(ShuttingDown(), self.clock.now()):
            if isinstance(action, Publish):
                topic, qos, retain = self._route(action.name)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(GOODBYE_TIMEOUT_S):
                        await self.link.publish_and_wait(
                            topic, action.payload, qos=qos, retain=retain
                        )
            else:
                await self._perform(action)
        await self.link.disconnect()

    # -- inputs -------------------------------------------------------------------------------

    async def _process_inputs(self) -> None:
        while True:
            item = await self._inputs.get()
            if isinstance(item, _Stop):
                return
            if isinstance(item, _Awaited):
                try:
                    await self._handle(item.input)
                finally:
                    if not item.done.done():
                        item.done.set_result(None)
                continue
            await self._handle(item() if callable(item) else item)

    async def _handle(self, event: Input) -> None:
        for action in self.core.handle(event, self.clock.now()):
            await self._perform(action)

    async def _before_connect(self) -> None:
        """Let the core set this attempt's last will, in turn with every other input."""
        done = asyncio.get_running_loop().create_future()
        self._inputs.put_nowait(_Awaited(Connecting(), done))
        await done

    def _on_connected(self, session_present: bool) -> None:
        self._inputs.put_nowait(Connected(session_present))

    def _on_disconnected(self, reason: str) -> None:
        self._inputs.put_nowait(Disconnected(reason))

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        if self.config.topics.is_cloud_presence(topic):
            self._inputs.put_nowait(CloudPresenceArrived(payload, retained))
            return
        try:
            parsed = self.config.topics.parse(topic)
        except ContractError as error:
            self._log(Log.warning("command.bad_topic", topic=topic, error=str(error)))
            return
        if parsed.kind is not TopicKind.COMMAND or parsed.name is None:
            self._log(Log.warning("command.bad_topic", topic=topic))
            return
        name, machine_id = parsed.name, parsed.machine_id
        # The board is read when the command is handled, not when it arrived.
        self._inputs.put_nowait(
            lambda: CommandArrived(name, payload, board_of(self.device), retained, machine_id)
        )

    async def _run_reader(self) -> None:
        """Open the reader's port, retrying while it is missing, and pass its events on.

        Until it opens the reader reports no link, so ``authorized`` gets ``board_down`` and
        telemetry shows the machine out of order, while MQTT keeps working.
        """
        attempt = 0
        while True:
            try:
                async with self.device:
                    await self._pump_reader_events()
                return
            except OSError as error:  # pyserial's SerialException is an OSError
                delay = reconnect_delay(attempt, base=1.0, cap=READER_RETRY_MAX_S)
                self._log(
                    Log.warning("reader.open_failed", error=str(error), retry_s=round(delay, 1))
                )
                attempt += 1
                await asyncio.sleep(delay)

    async def _pump_reader_events(self) -> None:
        async for event in self.device.events():
            self._log_reader_event(event)
            core_input = to_input(event, self.device.config)
            if core_input is not None:
                self._inputs.put_nowait(core_input)

    def _log_reader_event(self, event: ReaderEvent) -> None:
        kind = type(event).__name__
        fields = {"vend_id": ",".join(self.core.open_vends) or None, **asdict(event)}
        log = Log.info if kind in _NOTABLE_READER_EVENTS else Log.debug
        self._log(log(f"reader.{kind}", **fields))

    async def _every(self, interval: Callable[[], float], make: Callable[[], Input]) -> None:
        while True:
            await asyncio.sleep(interval())
            self._inputs.put_nowait(make)

    def _resend_interval(self) -> float:
        return self._settings.resend_interval_s

    def _telemetry_interval(self) -> float:
        return self._settings.telemetry_interval_s

    def _resend_due(self) -> Input:
        return ResendDue(board_of(self.device))

    def _telemetry_due(self) -> Input:
        uptime = int(self.clock.monotonic() - self._started)
        extra: dict[str, object] = {"mqtt_connects": self.link.connects}
        return TelemetryDue(uptime, board_of(self.device), extra)

    # -- actions ------------------------------------------------------------------------------

    async def _perform(self, action: Action) -> None:
        if isinstance(action, Persist):
            await self._in_writer(self.store.commit, action.commit)
            for event in action.commit.events:
                self.faults(after_outbox_write(event.name))
        elif isinstance(action, Publish):
            topic, qos, retain = self._route(action.name)
            self.link.publish(topic, action.payload, qos=qos, retain=retain)
        elif isinstance(action, StartSession):
            await self._start_session(action)
        elif isinstance(action, CancelSession):
            self._cancel_session(action)
        elif isinstance(action, ApplySettings):
            self._settings = action.settings
            self.device.set_selection_timeout(action.settings.selection_timeout_s)
            self.device.set_pricing(action.settings.price_mode, action.settings.planogram)
        elif isinstance(action, SetWill):
            status_topic = self.config.topics.status(self.config.machine_id)
            self.link.set_will(str(status_topic), action.payload)
        else:
            self._log(action)

    async def _start_session(self, action: StartSession) -> None:
        try:
            self.device.begin_session(action.funds)
        except (MdbError, ValueError) as error:
            await self._handle(BeginFailed(action.vend_id, board_of(self.device), str(error)))

    def _cancel_session(self, action: CancelSession) -> None:
        try:
            self.device.cancel_session()
        except (MdbError, ValueError) as error:
            self._log(Log.warning("vend.cancel_refused", vend_id=action.vend_id, error=str(error)))

    def _route(self, wire_name: str) -> tuple[str, int, bool]:
        """Topic, QoS and retain flag for a wire name such as ``evt/started`` or ``status``."""
        kind_text, _, name = wire_name.partition("/")
        kind = TopicKind(kind_text)
        parsed = ParsedTopic(self.config.machine_id, kind, name or None)
        return str(self.config.topics.build(parsed)), kind.qos, kind.retain

    def _log(self, log: Log) -> None:
        log_event(self.config.machine_id, log)

    async def _in_writer(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, function, *args)


def _agent_version() -> str:
    try:
        return version("vendgate")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0+unknown"


def build_agent(config: EdgeConfig, *, faults: Faults = no_faults) -> EdgeAgent:
    """The agent for a real machine: the serial reader and the SQLite outbox of ``config``."""
    cashless = CashlessConfig(
        currency=config.currency,
        scale_factor=config.mdb_scale_factor,
        decimal_places=config.mdb_decimal_places,
        selection_timeout_s=config.selection_timeout_s,
        link_lost_after_s=config.link_lost_after_s,
    )
    return EdgeAgent(
        config,
        device=SerialCashless(config.serial, cashless),
        store=SqliteStore(config.outbox_path),
        faults=faults,
    )

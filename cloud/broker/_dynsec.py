"""``BrokerAccounts`` on Mosquitto's dynamic-security plugin, over one aiomqtt connection.

Each call publishes a ``{"commands": [...]}`` message to ``$CONTROL/dynamic-security/v1``
and waits for the plugin's answer on ``.../response``. Every connected admin client gets every
answer, so each message carries a ``correlationData`` of its own and only the matching answer
is taken. A machine's account is a client with one role of its own, ``vendgate-machine-<id>``,
holding ``machine_grants``: the plugin's ACLs name no ``%u``, so a role per machine it is.

Before changing an account the client is looked up, and one with any other role (the cloud's,
an admin's) is refused: a machine id that happens to be a cloud login must not take it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import uuid
from collections.abc import Mapping, Sequence, Set
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self

import aiomqtt

from vendgate.cloud.broker._accounts import BrokerAccountError, BrokerAccounts, UnknownMachine
from vendgate.cloud.broker._acl import (
    CLOUD_ROLE,
    CONTROL_TOPIC,
    RESPONSE_TOPIC,
    machine_grants,
    machine_role,
)
from vendgate.cloud.broker._config import cloud_role, validate_password, validate_username
from vendgate.protocol.mqtt import DEFAULT_PREFIX, validate_machine_id

log = logging.getLogger(__name__)

Command = Mapping[str, Any]
Response = dict[str, Any]
CLIENT_NOT_FOUND = "Client not found"
ROLE_EXISTS = "Role already exists"
ROLE_NOT_FOUND = "Role not found"


class DynsecAccounts:
    """``async with DynsecAccounts(host, port, username=..., password=...) as accounts:``.

    ``username`` needs the cloud's role (``init-dynsec`` makes the first such login). Mosquitto
    makes the username the client id, so this connection must not share a username with a
    running cloud replica: each would throw the other off.
    """

    def __init__(
        self,
        host: str,
        port: int = 1883,
        *,
        username: str,
        password: str,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self.username = username
        self._password = password
        self.prefix = prefix
        self.timeout = timeout
        self._client: aiomqtt.Client | None = None
        self._pending: dict[str, asyncio.Future[list[Response]]] = {}
        self._stack = AsyncExitStack()

    # -- connection ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        client = aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self._password,
            identifier=self.username,
            clean_session=True,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            timeout=self.timeout,
        )
        try:
            await self._stack.enter_async_context(client)
        except aiomqtt.MqttError as exc:
            where = f"{self.host}:{self.port} as {self.username!r}"
            raise BrokerAccountError(f"cannot log in to the broker at {where}: {exc}") from exc
        try:
            granted = await client.subscribe(RESPONSE_TOPIC, qos=1)
            if any(_is_failure(code) for code in granted):
                raise BrokerAccountError(
                    f"the broker refused {self.username!r} a subscription to {RESPONSE_TOPIC}: "
                    "that login lacks the cloud's role, or the dynamic-security plugin is off"
                )
            reader = asyncio.create_task(self._read(client), name="dynsec-responses")
            self._stack.push_async_callback(_cancel, reader)
        except BaseException:
            await self._stack.aclose()
            raise
        self._client = client
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client = None
        await self._stack.aclose()

    async def _read(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                self._take(message.payload)
        except aiomqtt.MqttError as exc:
            lost = BrokerAccountError(f"the connection to the broker was lost ({exc})")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(lost)

    def _take(self, payload: object) -> None:
        try:
            responses = json.loads(payload)["responses"]  # type: ignore[arg-type]
            key = responses[0].get("correlationData")
        except (TypeError, ValueError, KeyError, IndexError, AttributeError):
            log.warning("an answer on %s that is not the plugin's: %r", RESPONSE_TOPIC, payload)
            return
        future = self._pending.get(key)
        if future is not None and not future.done():
            future.set_result(responses)

    # -- commands -----------------------------------------------------------------------------

    async def execute(self, *commands: Command) -> list[Response]:
        """Send ``commands`` in one message; the plugin's responses, in order. A response with
        an ``error`` is returned, not raised (see ``_run`` for that)."""
        client = self._client
        if client is None:
            raise RuntimeError("DynsecAccounts is used outside its `async with` block")
        key = uuid.uuid4().hex
        future: asyncio.Future[list[Response]] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            body = {"commands": [{**command, "correlationData": key} for command in commands]}
            await client.publish(CONTROL_TOPIC, json.dumps(body).encode(), qos=1)
            async with asyncio.timeout(self.timeout):
                return await future
        except aiomqtt.MqttError as exc:
            raise BrokerAccountError(f"the connection to the broker failed ({exc})") from exc
        except TimeoutError:
            names = ", ".join(str(command["command"]) for command in commands)
            raise BrokerAccountError(
                f"no answer to {names} from the broker's dynamic-security plugin within "
                f"{self.timeout:g} s: is the plugin loaded, and does {self.username!r} have "
                f"the cloud's role (it may publish to {CONTROL_TOPIC})?"
            ) from None
        finally:
            del self._pending[key]

    async def _run(self, *commands: Command, tolerate: frozenset[str] = frozenset()) -> None:
        """``execute``, raising on the first error not in ``tolerate``."""
        _check(commands, await self.execute(*commands), tolerate)

    async def _account(self, username: str, expected_role: str) -> dict[str, Any] | None:
        """The client ``username`` (None if there is none); refuses one with other roles."""
        (response,) = await self.execute({"command": "getClient", "username": username})
        if response.get("error") == CLIENT_NOT_FOUND:
            return None
        if response.get("error") is not None:
            raise BrokerAccountError(f"the broker refused getClient for {username!r}: {response}")
        client: dict[str, Any] = response["data"]["client"]
        roles = {role["rolename"] for role in client.get("roles", [])}
        if roles - {expected_role}:
            raise BrokerAccountError(
                f"{username!r} is an account with roles {sorted(roles)} on the broker, not "
                f"one with {expected_role!r} only; refusing to change it"
            )
        return client

    async def _machine(self, machine_id: str) -> dict[str, Any]:
        client = await self._account(validate_machine_id(machine_id), machine_role(machine_id))
        if client is None:
            raise UnknownMachine(f"the broker has no account for machine {machine_id!r}")
        return client

    async def _ensure(self, username: str, password: str, role: Command) -> None:
        """Create or update ``role`` and the client ``username`` holding only it."""
        role_name = str(role["rolename"])
        existing = await self._account(username, role_name)
        login = {"username": username, "password": validate_password(password)}
        login_command = "createClient" if existing is None else "modifyClient"
        create_role = {"command": "createRole", **role}
        client = {"command": login_command, **login, "roles": [{"rolename": role_name}]}
        responses = await self.execute(create_role, client)
        _check((create_role, client), responses, frozenset({ROLE_EXISTS}))
        if responses[0].get("error") == ROLE_EXISTS and role_name != CLOUD_ROLE:
            await self._run({"command": "modifyRole", **role})  # the grants as they are now

    # -- BrokerAccounts -----------------------------------------------------------------------

    async def add(self, machine_id: str, password: str) -> None:
        validate_machine_id(machine_id)
        grants = [grant.as_dynsec() for grant in machine_grants(machine_id, self.prefix)]
        role = {"rolename": machine_role(machine_id), "acls": grants}
        await self._ensure(machine_id, password, role)
        log.info("broker account of machine %s added or updated", machine_id)

    async def set_password(self, machine_id: str, password: str) -> None:
        await self._machine(machine_id)
        command = {"command": "setClientPassword", "username": machine_id}
        await self._run({**command, "password": validate_password(password)})
        log.info("broker password of machine %s changed", machine_id)

    async def disable(self, machine_id: str) -> None:
        await self._machine(machine_id)
        await self._run({"command": "disableClient", "username": machine_id})
        log.info("broker account of machine %s disabled", machine_id)

    async def enable(self, machine_id: str) -> None:
        await self._machine(machine_id)
        await self._run({"command": "enableClient", "username": machine_id})
        log.info("broker account of machine %s enabled", machine_id)

    async def remove(self, machine_id: str) -> None:
        role = machine_role(validate_machine_id(machine_id))
        commands: list[Command] = [{"command": "deleteRole", "rolename": role}]
        if await self._account(machine_id, role) is not None:
            commands.insert(0, {"command": "deleteClient", "username": machine_id})
        await self._run(*commands, tolerate=frozenset({ROLE_NOT_FOUND}))
        log.info("broker account of machine %s removed", machine_id)

    # -- beyond BrokerAccounts ----------------------------------------------------------------

    async def add_cloud_user(self, username: str, password: str) -> None:
        """Create or update a login with the cloud's role: a further cloud replica, or an
        admin login for tools (each needs a username of its own)."""
        await self._ensure(validate_username(username), password, cloud_role(self.prefix))
        log.info("broker login %s with the cloud's role added or updated", username)


def _is_failure(code: object) -> bool:
    """A SUBACK code that refuses (paho's ReasonCode, or 0x80 as MQTT 3.1.1 sends it)."""
    return bool(getattr(code, "is_failure", False)) or (isinstance(code, int) and code >= 0x80)


def _check(commands: Sequence[Command], responses: Sequence[Response], tolerate: Set[str]) -> None:
    for command, response in zip(commands, responses, strict=False):
        error = response.get("error")
        if error is not None and error not in tolerate:
            who = command.get("username") or command.get("rolename")
            raise BrokerAccountError(
                f"the broker refused {command['command']} for {who!r}: {error}"
            )


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _as_broker_accounts(accounts: DynsecAccounts) -> BrokerAccounts:
    return accounts  # mypy: DynsecAccounts is a BrokerAccounts

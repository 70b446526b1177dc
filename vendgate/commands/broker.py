"""``vendgate broker``: the embedded amqtt broker, and Mosquitto's dynamic-security accounts.

- ``vendgate broker [--host H] [--port P] [--database URL]`` runs the embedded amqtt broker
  until Ctrl-C/SIGTERM: anonymous, or with ``--database`` checking machines' logins against the
  cloud's database (the cloud's own ``Fleet`` check) and the cloud's login against its password.
- ``vendgate broker init-dynsec --file F --admin-user NAME`` writes the plugin's first file.
- ``vendgate broker account ACTION NAME`` adds, rotates, disables, enables or removes a login
  on a running Mosquitto through the plugin (what the cloud's operator side does in code).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import getpass
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vendgate.broker import CLOUD_USER  # amqtt itself is imported only when a broker starts
from vendgate.cli import CommandError
from vendgate.protocol.mqtt import DEFAULT_PREFIX

if TYPE_CHECKING:
    from vendgate.broker import Authenticate, EmbeddedBroker
    from vendgate.cloud.broker import DynsecAccounts

ADMIN_URL_ENV = "VENDGATE_BROKER_ADMIN_URL"
PREFIX_ENV = "VENDGATE_MQTT_PREFIX"
DATABASE_ENV = "VENDGATE_DATABASE_URL"
# The cloud's own broker URL: its login is the one the broker lets do anything.
CLOUD_MQTT_ENV = "VENDGATE_MQTT_URL"
# Nobody tells a broker on its own of a revoke: it looks, one query per connected machine.
RECHECK_S = 5.0
ACCOUNT_ACTIONS = ("add", "add-cloud", "set-password", "disable", "enable", "remove")
NEEDS_PASSWORD = ("add", "add-cloud", "set-password")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "broker",
        help="the embedded MQTT broker (amqtt); Mosquitto's dynamic-security accounts",
        description=(
            "Without an action: run the embedded amqtt broker (MQTT 3.1.1; a client that gives "
            "a username must use it as its client id). Without --database it is anonymous and "
            "lets anyone do anything; with it, machines log in with the passwords the cloud "
            "issued (read from its database, as the cloud checks them) and reach only their "
            "own topics, and the cloud logs in as --cloud-user. Prints its URL mqtt://HOST:PORT "
            "as the first line of output once it accepts connections; Ctrl-C or SIGTERM stops "
            "it cleanly. For production use Mosquitto with the repo's mosquitto.conf and the "
            "actions below (docs/broker.md)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1883, help="port to bind, 0 = any free port")
    parser.add_argument(
        "--database",
        default=os.environ.get(DATABASE_ENV) or None,
        metavar="URL",
        help=f"the cloud's database: check machines' logins against it (${DATABASE_ENV})",
    )
    parser.add_argument(
        "--cloud-user",
        metavar="NAME",
        help="the cloud's login, which may do anything (default: the user in "
        f"${CLOUD_MQTT_ENV}, else {CLOUD_USER})",
    )
    parser.add_argument(
        "--cloud-password-file",
        type=Path,
        metavar="FILE",
        help=f"the cloud's password, the file's first line (default: the password in "
        f"${CLOUD_MQTT_ENV}, else asked on the terminal)",
    )
    parser.add_argument(
        "--recheck",
        type=float,
        default=RECHECK_S,
        metavar="SECONDS",
        help="with --database: this often, drop connections whose login no longer holds (a "
        f"password rotated, a machine revoked or deleted; default {RECHECK_S:g})",
    )
    add_prefix_option(parser)
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="broker_command", metavar="[ACTION]")

    init = actions.add_parser(
        "init-dynsec",
        help="write Mosquitto's first dynamic-security file, with the cloud's login",
        description=(
            "Writes the file mosquitto.conf's plugin_opt_config_file names (as `mosquitto_ctrl "
            "dynsec init` would, mode 0600, never over an existing file): one login, "
            "--admin-user, with the cloud's role (everything under the prefix, $share "
            "subscriptions, the $CONTROL/dynamic-security topics); default access denies "
            "everything else. Give the file to the mosquitto user before starting the broker."
        ),
    )
    init.add_argument("--file", required=True, type=Path, help="the JSON file to create")
    init.add_argument("--admin-user", required=True, help="the login with the cloud's role")
    add_password_options(init)
    add_prefix_option(init)
    init.set_defaults(handler=run_init_dynsec)

    account = actions.add_parser(
        "account",
        help="add, rotate, disable, enable or remove a login on a running Mosquitto",
        description=(
            "Through the dynamic-security plugin, logged in as a login with the cloud's role "
            f"(--url, else ${ADMIN_URL_ENV}; a username no running cloud replica uses). add: "
            "a machine (its id is the username) confined to its own topics, or its new "
            "password if it exists; add-cloud: a further cloud replica or admin login; "
            "disable: refused and disconnected at once; remove: gone (no error if it was)."
        ),
    )
    account.add_argument("action", choices=ACCOUNT_ACTIONS)
    account.add_argument("name", help="the machine id, or for add-cloud the username")
    account.add_argument(
        "--url",
        default=os.environ.get(ADMIN_URL_ENV),
        help=f"mqtt://USER[:PASSWORD]@HOST[:PORT] of the admin login (${ADMIN_URL_ENV})",
    )
    add_password_options(account)
    add_prefix_option(account)
    account.set_defaults(handler=run_account)


def add_password_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--password-file", type=Path, help="read the password from the file's first line"
    )
    source.add_argument(
        "--password", help="the password itself (seen by other local users: prefer a file)"
    )


def add_prefix_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prefix",
        default=os.environ.get(PREFIX_ENV, "vend/v1"),
        help=f"the topic prefix (${PREFIX_ENV}, default vend/v1)",
    )


def read_password(args: argparse.Namespace, who: str) -> str:
    """``--password``, the first line of ``--password-file``, or asked twice on the terminal."""
    if args.password is not None:
        return str(args.password)
    if args.password_file is not None:
        return first_line_of(args.password_file)
    if not sys.stdin.isatty():
        raise CommandError(f"no password for {who}: give --password-file FILE (no terminal)")
    first = getpass.getpass(f"password for {who}: ")
    if getpass.getpass(f"password for {who} again: ") != first:
        raise CommandError(f"the two passwords for {who} differ")
    return first


def first_line_of(path: Path) -> str:
    """A password file's first line ("" for an empty file)."""
    lines = path.read_text().splitlines()
    return lines[0] if lines else ""


# -- the embedded broker -----------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    if args.database is None:
        if args.cloud_user or args.cloud_password_file:
            raise CommandError("--cloud-user and --cloud-password-file need --database", 2)
        return asyncio.run(serve(args.host, args.port, prefix=args.prefix))
    if not args.recheck > 0:
        raise CommandError(f"--recheck must be more than 0 seconds, got {args.recheck:g}", 2)
    cloud = cloud_login(args)  # asked before anything starts
    return asyncio.run(
        serve(args.host, args.port, args.database, cloud, args.prefix, recheck=args.recheck)
    )


def cloud_login(args: argparse.Namespace) -> tuple[str, str]:
    """The cloud's username and password: the options, else ``$VENDGATE_MQTT_URL`` (the same
    variable the cloud logs in with), else the terminal."""
    from vendgate.cloud.settings import MqttSettings

    url = os.environ.get(CLOUD_MQTT_ENV)
    try:
        given = MqttSettings.from_url(url) if url else MqttSettings()
    except ValueError as exc:
        raise CommandError(f"{CLOUD_MQTT_ENV}: {exc}", exit_code=2) from None
    user = args.cloud_user or given.username or CLOUD_USER
    if args.cloud_password_file is not None:
        password = first_line_of(args.cloud_password_file)
    elif given.password and given.username == user:
        password = given.password
    elif sys.stdin.isatty():
        password = getpass.getpass(f"broker password for the cloud's login {user}: ")
    else:
        raise CommandError(
            f"no password for the cloud's login {user}: give --cloud-password-file FILE or "
            f"{CLOUD_MQTT_ENV}=mqtt://{user}:PASSWORD@HOST:PORT"
        )
    if not password:
        raise CommandError(f"the password for the cloud's login {user} is empty", exit_code=2)
    return user, password


async def serve(
    host: str,
    port: int,
    database: str | None = None,
    cloud: tuple[str, str] | None = None,
    prefix: str = DEFAULT_PREFIX,
    *,
    recheck: float = RECHECK_S,
) -> int:
    """Run the broker until SIGINT/SIGTERM: anonymous without ``database``, else checking
    machines against it (at every login, and every ``recheck`` seconds for those connected)
    and ``cloud`` (username, password) against its password."""
    from vendgate.broker import BrokerStartError, EmbeddedBroker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with machine_logins(database) as authenticate:
        cloud_logins = dict([cloud]) if cloud else None
        broker = EmbeddedBroker(
            host, port, authenticate=authenticate, cloud_logins=cloud_logins, prefix=prefix
        )
        try:
            await broker.start()
        except BrokerStartError as exc:
            print(f"vendgate broker: {exc}", file=sys.stderr)
            return 1
        rechecking = asyncio.create_task(keep_rechecking(broker, recheck))
        try:
            print(broker.url, flush=True)
            say_who_gets_in(broker, database)
            await stop.wait()
        finally:
            rechecking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rechecking
            await broker.stop()
    return 0


async def keep_rechecking(broker: EmbeddedBroker, interval: float) -> None:
    if broker.authenticate is None:
        return  # anonymous: no login to lose
    while True:
        await asyncio.sleep(interval)
        await broker.recheck()


@contextlib.asynccontextmanager
async def machine_logins(database: str | None) -> AsyncIterator[Authenticate | None]:
    """The cloud's own check of a machine's login, on ``database`` (None: no database)."""
    if database is None:
        yield None
        return
    from sqlalchemy.exc import DBAPIError

    from vendgate.cloud.db import session_factory
    from vendgate.cloud.machines import machine_login_holds
    from vendgate.commands.cloud import open_database, shown_url

    engine = await open_database(database)
    try:
        sessions = session_factory(engine)
        try:
            await machine_login_holds(sessions, CLOUD_USER, "")  # the tables are there
        except DBAPIError:
            raise CommandError(
                f"the database {shown_url(database)} has no machines yet (no vendgate tables): "
                "run `vendgate cloud migrate` on it first"
            ) from None
        yield functools.partial(machine_login_holds, sessions)
    finally:
        await engine.dispose()


def say_who_gets_in(broker: EmbeddedBroker, database: str | None) -> None:
    if database is None:
        print(
            "vendgate broker: WARNING: anonymous: anyone who reaches "
            f"{broker.host}:{broker.port} may publish and subscribe to anything (give "
            "--database URL to check logins; development only)",
            file=sys.stderr,
            flush=True,
        )
        return
    from vendgate.commands.cloud import shown_url

    cloud = ", ".join(sorted(broker.cloud_users))
    print(
        f"vendgate broker: logins checked: the cloud as {cloud}, machines against "
        f"{shown_url(database)}",
        file=sys.stderr,
        flush=True,
    )


# -- Mosquitto's dynamic security ----------------------------------------------------------------


def run_init_dynsec(args: argparse.Namespace) -> int:
    from vendgate.cloud.broker import write_initial_config

    password = read_password(args, args.admin_user)
    try:
        write_initial_config(args.file, args.admin_user, password, args.prefix)
    except FileExistsError:
        raise CommandError(
            f"{args.file} exists: init-dynsec never overwrites it (once the broker ran, it "
            "holds every login); change logins with `vendgate broker account`"
        ) from None
    except ValueError as exc:
        raise CommandError(str(exc), exit_code=2) from None
    print(f"{args.file}: login {args.admin_user!r} with the cloud's role; chown it to mosquitto")
    return 0


def run_account(args: argparse.Namespace) -> int:
    from vendgate.cloud.broker import BrokerAccountError

    password = read_password(args, args.name) if args.action in NEEDS_PASSWORD else ""
    accounts = admin_login(args)
    try:
        asyncio.run(change_account(accounts, args.action, args.name, password))
    except BrokerAccountError as exc:
        raise CommandError(str(exc)) from None
    except ValueError as exc:  # a machine id, username or password the broker must not get
        raise CommandError(str(exc), exit_code=2) from None
    print(f"{args.name}: {args.action} done")
    return 0


def admin_login(args: argparse.Namespace) -> DynsecAccounts:
    from vendgate.cloud.broker import DynsecAccounts
    from vendgate.cloud.settings import MqttSettings

    if not args.url:
        raise CommandError(f"no admin login: give --url mqtt://USER@HOST:PORT or ${ADMIN_URL_ENV}")
    try:
        login = MqttSettings.from_url(args.url)
    except ValueError as exc:
        raise CommandError(f"--url: {exc}", exit_code=2) from None
    if login.username is None:
        raise CommandError("--url names no user: mqtt://USER[:PASSWORD]@HOST:PORT", exit_code=2)
    password = login.password
    if password is None:
        if not sys.stdin.isatty():
            raise CommandError(f"--url has no password for {login.username} (and no terminal)")
        password = getpass.getpass(f"broker password for {login.username}: ")
    return DynsecAccounts(
        login.host, login.port, username=login.username, password=password, prefix=args.prefix
    )


async def change_account(accounts: DynsecAccounts, action: str, name: str, password: str) -> None:
    async with accounts:
        match action:
            case "add":
                await accounts.add(name, password)
            case "add-cloud":
                await accounts.add_cloud_user(name, password)
            case "set-password":
                await accounts.set_password(name, password)
            case "disable":
                await accounts.disable(name)
            case "enable":
                await accounts.enable(name)
            case "remove":
                await accounts.remove(name)

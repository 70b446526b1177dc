"""A real `mosquitto` process started from the repo's mosquitto.conf (or mosquitto-static.conf).

Only what cannot stay as shipped is changed: the listener port (a free one on loopback), the
files the config names (into a temporary folder), and, when the named plugin is not there
(another architecture), the dynamic-security plugin's path. The repo's files are conf.d
drop-ins that leave ``persistence_location`` and ``log_dest`` to Debian's main file, so they
are added here, in the temporary folder too. Everything else, including
``allow_anonymous false``, ``use_username_as_clientid`` and ``set_tcp_nodelay``, is the
production file. (tests/test_mosquitto_debian_layout.py runs the README's steps inside
Debian's own layout instead.)

With mosquitto.conf the logins are made as in production: ``vendgate broker init-dynsec``'s
file with ``CLOUD_USER``, then, once the broker listens, ``DynsecAccounts`` adds
``CLOUD_USER_2``, ``ADMIN_USER`` and the ``TEST_MACHINES``. With mosquitto-static.conf they go
into a password file and the repo's mosquitto.acl.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from support.tiers import unavailable
from vendgate.cloud.broker import DynsecAccounts, write_initial_config
from vendgate.protocol.mqtt import DEFAULT_PREFIX

REPO = Path(__file__).resolve().parents[2]
CLOUD_USER = "vendgate-cloud"
# Client id = username on Mosquitto (use_username_as_clientid), so a second replica needs its own
# user (the cloud's role; mosquitto.acl gives it the same lines), and so does a test that changes
# logins while the cloud is connected (ADMIN_USER, not in mosquitto.acl).
CLOUD_USER_2 = "vendgate-cloud-2"
ADMIN_USER = "vendgate-admin"
CLOUD_PASSWORD = "cloud-secret"
TEST_MACHINES = tuple(f"m{i}" for i in range(1, 10))
DYNAMIC = "mosquitto.conf"
STATIC = "mosquitto-static.conf"
DYNSEC_FILE = "dynsec.json"


def machine_password(machine_id: str) -> str:
    return f"{machine_id}-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def plugin_path(configured: str) -> str:
    """The dynamic-security plugin: the configured path, else this machine's (its folder names
    the architecture)."""
    if Path(configured).exists():
        return configured
    found = sorted(glob.glob("/usr/lib/*/mosquitto_dynamic_security.so"))
    return found[0] if found else configured  # mosquitto then names the missing file


def render_config(source: str, port: int, folder: Path) -> str:
    """The repo's config with the port and file paths moved into ``folder``, plus the lines
    Debian's main mosquitto.conf would add (persistence and log in ``folder``)."""
    replacements = {r"^listener 1883\s*$": lambda _: f"listener {port} 127.0.0.1"}
    if re.search(r"^plugin_opt_config_file ", source, flags=re.MULTILINE):
        replacements[r"^plugin (\S+)$"] = lambda found: f"plugin {plugin_path(found[1])}"
        replacements[r"^plugin_opt_config_file .*$"] = lambda _: (
            f"plugin_opt_config_file {folder / DYNSEC_FILE}"
        )
    else:
        replacements[r"^password_file .*$"] = lambda _: f"password_file {folder / 'passwd'}"
        replacements[r"^acl_file .*$"] = lambda _: f"acl_file {folder / 'acl'}"
    for pattern, line in replacements.items():
        source, count = re.subn(pattern, line, source, flags=re.MULTILINE)
        if count != 1:
            raise RuntimeError(f"the config no longer has exactly one line like {pattern!r}")
    main_file = [f"persistence_location {folder}/", f"log_dest file {folder / 'mosquitto.log'}"]
    return source + "\n# as Debian's main mosquitto.conf sets them\n" + "\n".join(main_file) + "\n"


@contextlib.contextmanager
def running(config: str = DYNAMIC, prefix: str = "vendgate-mosquitto-") -> Iterator[Mosquitto]:
    """A prepared, started broker running the repo's ``config``, removed afterwards."""
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        unavailable("mosquitto", "no `mosquitto` binary on PATH (apt install mosquitto)")
    # Not pytest's tmp_path: mosquitto started as root drops to its own user, which cannot
    # enter pytest's private (0700) folders.
    broker = Mosquitto(Path(tempfile.mkdtemp(prefix=prefix)), config=config)
    broker.prepare()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(broker.folder, ignore_errors=True)


def give_to_mosquitto(path: Path) -> None:
    """mosquitto started as root reads its files as the mosquitto user."""
    if os.geteuid() == 0:
        with contextlib.suppress(LookupError):  # no such user: this mosquitto stays root
            shutil.chown(path, "mosquitto", "mosquitto")


@dataclass
class Mosquitto:
    """One broker process; ``stop()`` and ``start()`` again keep its port, persistence and
    logins. ``config`` is the repo's file it runs: ``DYNAMIC`` (default) or ``STATIC``."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    config: str = DYNAMIC
    _to_provision: bool = False

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def prepare(self, provision: bool = True) -> None:
        """The config, and its logins unless ``provision`` is false (the test makes them)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o777)  # mosquitto started as root drops to its own user
        config = render_config((REPO / self.config).read_text(), self.port, self.folder)
        (self.folder / "mosquitto.conf").write_text(config)
        (self.folder / "mosquitto.conf").chmod(0o644)
        if not provision:
            return
        if self.config == DYNAMIC:
            dynsec = self.folder / DYNSEC_FILE
            write_initial_config(dynsec, CLOUD_USER, CLOUD_PASSWORD, DEFAULT_PREFIX)
            give_to_mosquitto(dynsec)
            self._to_provision = True  # the rest once it listens, as in production
            return
        shutil.copy(REPO / "mosquitto.acl", self.folder / "acl")
        (self.folder / "acl").chmod(0o644)
        for cloud_user in (CLOUD_USER, CLOUD_USER_2):
            self._add_to_password_file(cloud_user, CLOUD_PASSWORD)
        for machine in TEST_MACHINES:
            self._add_to_password_file(machine, machine_password(machine))

    def _add_to_password_file(self, username: str, password: str) -> None:
        passwd = self.folder / "passwd"
        create = [] if passwd.exists() else ["-c"]
        subprocess.run(
            ["mosquitto_passwd", *create, "-b", str(passwd), username, password],
            check=True,
            capture_output=True,
        )
        passwd.chmod(0o644)

    def accounts(
        self, username: str = ADMIN_USER, password: str = CLOUD_PASSWORD
    ) -> DynsecAccounts:
        """The dynamic-security admin client, logged in as ``username`` (the cloud's role)."""
        return DynsecAccounts("127.0.0.1", self.port, username=username, password=password)

    async def _provision(self) -> None:
        async with self.accounts(CLOUD_USER) as accounts:
            for user in (CLOUD_USER_2, ADMIN_USER):
                await accounts.add_cloud_user(user, CLOUD_PASSWORD)
            for machine in TEST_MACHINES:
                await accounts.add(machine, machine_password(machine))

    def start(self, timeout: float = 10.0) -> None:
        log = (self.folder / "stderr.log").open("ab")
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.folder / "mosquitto.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start:\n{self.log_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.05)
                continue
            if self._to_provision:
                self._to_provision = False
                # its own thread and loop: start() is called from sync fixtures and from threads
                with ThreadPoolExecutor(1) as pool:
                    pool.submit(asyncio.run, self._provision()).result()
            return
        raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{self.log_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_text(self) -> str:
        parts = [self.folder / "mosquitto.log", self.folder / "stderr.log"]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())

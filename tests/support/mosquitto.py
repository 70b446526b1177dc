"""A real `mosquitto` process started from the repo's mosquitto.conf and mosquitto.acl.

Only what cannot stay as shipped is changed: the listener port (a free one on loopback), and the
password and ACL paths (a temporary folder). The repo's file is a conf.d drop-in that leaves
``persistence_location`` and ``log_dest`` to Debian's main file, so they are added here, in the
temporary folder too. Everything else, including ``allow_anonymous false``, the ACL and
``set_tcp_nodelay``, is the production file. (tests/test_mosquitto_debian_layout.py runs the file
inside Debian's own layout instead.)
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLOUD_USER = "vendgate-cloud"
# Client id = username on Mosquitto (use_username_as_clientid), so a second replica needs its own
# user; mosquitto.acl gives it the same lines.
CLOUD_USER_2 = "vendgate-cloud-2"
CLOUD_PASSWORD = "cloud-secret"
TEST_MACHINES = tuple(f"m{i}" for i in range(1, 10))


def machine_password(machine_id: str) -> str:
    return f"{machine_id}-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_config(source: str, port: int, folder: Path) -> str:
    """The repo's config with the port and file paths moved into ``folder``, plus the lines
    Debian's main mosquitto.conf would add (persistence and log in ``folder``)."""
    replacements = {
        r"^listener 1883\s*$": f"listener {port} 127.0.0.1",
        r"^password_file .*$": f"password_file {folder / 'passwd'}",
        r"^acl_file .*$": f"acl_file {folder / 'acl'}",
    }
    for pattern, line in replacements.items():
        source, count = re.subn(pattern, line, source, flags=re.MULTILINE)
        if count != 1:
            raise RuntimeError(f"mosquitto.conf no longer has exactly one line like {pattern!r}")
    main_file = [f"persistence_location {folder}/", f"log_dest file {folder / 'mosquitto.log'}"]
    return source + "\n# as Debian's main mosquitto.conf sets them\n" + "\n".join(main_file) + "\n"


@dataclass
class Mosquitto:
    """One broker process; ``stop()`` and ``start()`` again keep its port and persistence."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o777)  # mosquitto started as root drops to its own user
        config = render_config((REPO / "mosquitto.conf").read_text(), self.port, self.folder)
        (self.folder / "mosquitto.conf").write_text(config)
        shutil.copy(REPO / "mosquitto.acl", self.folder / "acl")
        for cloud_user in (CLOUD_USER, CLOUD_USER_2):
            self.add_user(cloud_user, CLOUD_PASSWORD)
        for machine in TEST_MACHINES:
            self.add_user(machine, machine_password(machine))
        for name in ("acl", "passwd", "mosquitto.conf"):
            (self.folder / name).chmod(0o644)

    def add_user(self, username: str, password: str) -> None:
        passwd = self.folder / "passwd"
        create = [] if passwd.exists() else ["-c"]
        subprocess.run(
            ["mosquitto_passwd", *create, "-b", str(passwd), username, password],
            check=True,
            capture_output=True,
        )
        passwd.chmod(0o644)

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
                return
            except OSError:
                time.sleep(0.05)
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

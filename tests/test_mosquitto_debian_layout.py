"""The README's "Production deployment → Broker" steps, run on Debian's stock Mosquitto layout.

Debian's package starts ``mosquitto -c /etc/mosquitto/mosquitto.conf``; that main file sets
``pid_file``, ``persistence_location`` and ``log_dest file`` and includes ``conf.d``, where the
README drops the repo's ``mosquitto.conf``. This test lays that out in a temporary folder from
``support/debian-mosquitto.conf`` (a verbatim copy of the file Debian 12's mosquitto 2.0.11
package ships; the system's own may be edited, as it is on our CI machine), runs the shell
lines of the README's block with ``/etc/mosquitto`` and ``/var/lib/mosquitto`` moved into the
folder and another port (passwords, which the README's commands ask for, given on the command
line), and logs in. Only paths, the port and the passwords change; a README line the test does
not understand fails it, so the README and this test change together.
"""

from __future__ import annotations

import asyncio
import grp
import hashlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiomqtt
import pytest
from support.mosquitto import REPO, Mosquitto, free_port, plugin_path
from support.tiers import unavailable

from vendgate.cli import main

pytestmark = pytest.mark.mosquitto

STOCK_CONF = Path(__file__).parent / "support" / "debian-mosquitto.conf"
PASSWORD = "layout-secret"
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def readme_broker_steps() -> list[list[str]]:
    """The commands of the ``sh`` block in the README's Broker paragraph, without ``sudo``."""
    readme = (REPO / "README.md").read_text()
    found = re.search(r"\*\*Broker\.\*\*.*?```sh\n(.*?)```", readme, flags=re.DOTALL)
    assert found, "README.md has no ```sh block in its **Broker.** paragraph"
    steps = []
    for line in found.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["sudo"]:
            words = words[1:]
        if words:
            steps.append(words)
    return steps


def moved(path: str, etc: Path) -> str:
    return path.replace("/etc/mosquitto", str(etc)).replace("/var/lib/mosquitto", f"{etc}/lib")


def run_step(words: list[str], etc: Path, broker: Mosquitto, env: dict[str, str]) -> None:
    """One README command on the temporary layout; the broker's start stands for systemctl.
    The README's relative paths are in ``etc``'s ``work`` folder (the operator's checkout);
    ``env`` holds what it exports."""
    work = etc / "work"
    match words:
        case ["apt", "install", "mosquitto"]:
            pass  # the binaries are there (checked by the fixture)
        case ["cp", source, target] if target.startswith("/etc/mosquitto/"):
            shutil.copy(REPO / source, moved(target, etc))
        case ["vendgate", "broker", "init-dynsec", "--file", path, *options]:
            command = ["broker", "init-dynsec", "--file", str(work / path), *options]
            assert main([*command, "--password", PASSWORD]) == 0
        case ["install", "-m", mode, "-o", user, "-g", group, source, target]:
            installed = Path(moved(target, etc))
            shutil.copy(work / source, installed)
            installed.chmod(int(mode, 8))
            if os.geteuid() == 0:
                shutil.chown(installed, user, group)
        case ["rm", path]:
            (work / path).unlink()
        case ["export", setting] if setting.startswith("VENDGATE_BROKER_ADMIN_URL="):
            admin = re.fullmatch(r"[^=]+=mqtt://([\w-]+)@127\.0\.0\.1:1883", setting)
            assert admin, f"the README's admin login {setting!r} is new to me"
            env["admin_url"] = f"mqtt://{admin[1]}:{PASSWORD}@127.0.0.1:{broker.port}"
        case ["vendgate", "broker", "account", *arguments]:
            command = ["broker", "account", *arguments, "--url", env["admin_url"]]
            command += ["--password", PASSWORD]
            with ThreadPoolExecutor(1) as pool:  # it runs its own event loop; the test's is busy
                assert pool.submit(main, command).result() == 0
        case ["systemctl", "restart", "mosquitto"]:
            move_into_folder(etc, broker.port)
            broker.start()
        case _:
            raise AssertionError(f"the README's Broker step {shlex.join(words)!r} is new to me")


def move_into_folder(etc: Path, port: int) -> None:
    """Debian's absolute paths into ``etc``, the drop-in's listener onto ``port``."""
    main = etc / "mosquitto.conf"
    text = main.read_text()
    for stock, there in {
        "/run/mosquitto/": f"{etc}/run/",
        "/var/lib/mosquitto/": f"{etc}/lib/",
        "/var/log/mosquitto/": f"{etc}/",
        "/etc/mosquitto/": f"{etc}/",
    }.items():
        assert stock in text, f"Debian's mosquitto.conf no longer names {stock}"
        text = text.replace(stock, there)
    main.write_text(text)
    for drop_in in (etc / "conf.d").glob("*.conf"):
        text, listeners = re.subn(
            r"^listener 1883\s*$", f"listener {port} 127.0.0.1", drop_in.read_text(), flags=re.M
        )
        assert listeners == 1, f"{drop_in.name} has no single `listener 1883` line"
        text = re.sub(
            r"^plugin (\S+)$", lambda found: f"plugin {plugin_path(found[1])}", text, flags=re.M
        )
        drop_in.write_text(moved(text, etc))


@pytest.fixture
def debian_etc() -> Iterator[Path]:
    """An empty /etc/mosquitto as Debian's package leaves it: the main file and conf.d."""
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        unavailable("mosquitto", "no `mosquitto` binary on PATH (apt install mosquitto)")
    try:
        grp.getgrnam("mosquitto")
    except KeyError:
        pytest.skip("no `mosquitto` group: this mosquitto is not Debian's package")
    etc = Path(tempfile.mkdtemp(prefix="vendgate-debian-layout-"))
    for folder in (etc, etc / "conf.d", etc / "run", etc / "lib", etc / "work"):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o777)  # Debian makes these the mosquitto user's; it drops to that user
    shutil.copy(STOCK_CONF, etc / "mosquitto.conf")
    (etc / "mosquitto.conf").chmod(0o644)
    try:
        yield etc
    finally:
        shutil.rmtree(etc, ignore_errors=True)


async def test_the_readme_broker_steps_work_on_debians_stock_layout(debian_etc: Path) -> None:
    broker = Mosquitto(debian_etc, port=free_port())
    env: dict[str, str] = {}
    try:
        for words in readme_broker_steps():
            run_step(words, debian_etc, broker, env)
        assert broker.process is not None, "the README's steps never (re)start mosquitto"
        async with (
            aiomqtt.Client(
                "127.0.0.1",
                broker.port,
                username="vendgate-cloud",
                password=PASSWORD,
                socket_options=NODELAY,
            ) as cloud,
            aiomqtt.Client(
                "127.0.0.1", broker.port, username="m1", password=PASSWORD, socket_options=NODELAY
            ) as m1,
        ):
            await cloud.subscribe("vend/v1/+/evt/#", qos=1)
            await m1.publish("vend/v1/m1/evt/hello", b"from m1", qos=1)
            async with asyncio.timeout(10):
                message = await anext(aiter(cloud.messages))
        assert (str(message.topic), bytes(message.payload)) == (  # type: ignore[arg-type]
            "vend/v1/m1/evt/hello",
            b"from m1",
        )
    except (AssertionError, RuntimeError, aiomqtt.MqttError):
        print(broker.log_text())  # shown by pytest on failure: mosquitto's own words
        raise
    finally:
        broker.stop()
    # Debian's main file, not the drop-in, decided where the sessions persist
    assert (debian_etc / "lib" / "mosquitto.db").exists()


def test_the_copy_of_debians_mosquitto_conf_is_the_installed_packages_own() -> None:
    if shutil.which("dpkg-query") is None:
        pytest.skip("no dpkg-query: not a Debian system")
    listed = subprocess.run(
        ["dpkg-query", "-W", "-f=${Conffiles}", "mosquitto"], capture_output=True, text=True
    )
    recorded = {}  # conffile path -> md5 of the file as the package shipped it
    for line in listed.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            recorded[fields[0]] = fields[1]
    if "/etc/mosquitto/mosquitto.conf" not in recorded:
        pytest.skip("Debian's mosquitto package is not installed")
    digest = hashlib.md5(STOCK_CONF.read_bytes()).hexdigest()
    assert digest == recorded["/etc/mosquitto/mosquitto.conf"], (
        "support/debian-mosquitto.conf is not the stock file of the installed mosquitto package; "
        "copy the package's own (dpkg-deb -x on its .deb) and check the README's steps again"
    )

"""The agent's config file: what `vendgate edge claim` writes and `vendgate edge --config` reads.

Flags win over the environment, the environment over the file, the file over defaults; the
file is written whole or not at all, owner-only, keeping the lines it does not set.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vendgate.edge import ConfigError, EdgeConfig, read_config_file, write_config_file

LOGIN = {
    "VENDGATE_MACHINE_ID": "lobby-1",
    "VENDGATE_MQTT_URL": "mqtts://broker.example.com",
    "VENDGATE_MQTT_PASSWORD": "s3cret=with=equals",
    "VENDGATE_MQTT_PREFIX": "vend/v1",
}


def test_the_written_file_is_owner_only_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "edge.env"
    write_config_file(path, LOGIN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_config_file(path) == LOGIN
    assert [p.name for p in path.parent.iterdir()] == ["edge.env"]  # no temporary left


def test_a_second_write_keeps_the_other_lines(tmp_path: Path) -> None:
    path = tmp_path / "edge.env"
    path.write_text("# mine\nVENDGATE_SERIAL=/dev/ttyAMA0\nVENDGATE_MQTT_PASSWORD=old\n")
    write_config_file(path, LOGIN)
    values = read_config_file(path)
    assert values["VENDGATE_SERIAL"] == "/dev/ttyAMA0"
    assert values["VENDGATE_MQTT_PASSWORD"] == LOGIN["VENDGATE_MQTT_PASSWORD"]


def test_the_file_sits_below_flags_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "edge.env"
    write_config_file(path, {**LOGIN, "VENDGATE_SERIAL": "/dev/from-file"})
    config = EdgeConfig.load({"config": str(path)}, {})
    assert config.machine_id == "lobby-1"
    assert config.mqtt.password == LOGIN["VENDGATE_MQTT_PASSWORD"]
    assert config.mqtt.tls
    assert config.serial == "/dev/from-file"
    env = {"VENDGATE_CONFIG": str(path), "VENDGATE_SERIAL": "/dev/from-env"}
    assert EdgeConfig.load({}, env).serial == "/dev/from-env"
    assert EdgeConfig.load({"serial": "/dev/flag"}, env).serial == "/dev/flag"


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("VENDGATE_NOPE=1\n", "VENDGATE_NOPE"),
        ("just words\n", "just words"),
        ("\n\nVENDGATE_SERIAL=x\nPATH=/bin\n", "edge.env:4"),
    ],
)
def test_a_bad_line_is_refused_naming_it(tmp_path: Path, text: str, wanted: str) -> None:
    path = tmp_path / "edge.env"
    path.write_text(text)
    with pytest.raises(ConfigError, match=wanted):
        EdgeConfig.load({"config": str(path)}, {})


def test_quotes_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "edge.env"
    path.write_text("# c\n\nVENDGATE_MACHINE_ID=\"m1\"\nVENDGATE_SERIAL='/dev/x y'\n")
    assert read_config_file(path) == {"VENDGATE_MACHINE_ID": "m1", "VENDGATE_SERIAL": "/dev/x y"}


def test_a_missing_config_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no file"):
        EdgeConfig.load({"config": str(tmp_path / "absent.env")}, {})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_claim_against_no_cloud_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "edge.env"
    result = subprocess.run(
        [sys.executable, "-m", "vendgate", "edge", "claim", "--cloud",
         f"http://127.0.0.1:{free_port()}", "--code", "ABCDE-FGHJK", "--config", str(path)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("vendgate edge claim: cannot reach the cloud")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not path.exists()

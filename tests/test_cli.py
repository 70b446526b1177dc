"""The ``vendgate`` command line: help on every subcommand, and ``vendgate broker`` for real."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from vendgate.cli import build_parser, command_modules, main

VENDGATE = [sys.executable, "-m", "vendgate"]


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    names = [module.rsplit(".", 1)[1].replace("_", "-") for module in command_modules()]
    assert "broker" in names
    for name in names:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: vendgate" in capsys.readouterr().out


def test_no_subcommand_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_unknown_subcommand_is_refused() -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["teleport"])
    assert exit_info.value.code == 2


@pytest.mark.amqtt
async def test_broker_prints_its_url_first_serves_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        *VENDGATE, "broker", "--port", "0", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        first_line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
        assert first_line.startswith("mqtt://127.0.0.1:")
        port = int(first_line.rsplit(":", 1)[1])
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.subscribe("vend/v1/#", qos=1)
            await client.publish("vend/v1/m1/telemetry", b"{}", qos=1)
            message = await asyncio.wait_for(anext(aiter(client.messages)), 5)
            assert message.payload == b"{}"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_broker_reports_a_busy_port_clearly() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*VENDGATE, "broker", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


# -- user errors: one clear line on stderr, a non-zero exit, never a traceback -----------------

UNREACHABLE = "postgresql+asyncpg://nobody:s3cret@127.0.0.1:1/x"  # nothing listens on port 1


def one_line_error(
    tmp_path: Path,
    *argv: str,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> str:
    """Run the real command; it must fail with exactly one line on stderr. Returns that line."""
    env = {**os.environ, "VENDGATE_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    env.pop("VENDGATE_DATABASE_URL", None)
    env.update(extra_env or {})
    if database_url is not None:
        env["VENDGATE_DATABASE_URL"] = database_url
    result = subprocess.run(
        [*VENDGATE, *argv], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path
    )
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert result.returncode not in (0, None), result
    assert lines[0].startswith("vendgate"), lines[0]
    assert "s3cret" not in result.stderr  # a database password is never shown
    return lines[0]


@pytest.mark.parametrize(
    ("slots", "expected"),
    [
        (["1:Cola"], ["'1:Cola'", "ITEM:NAME:PRICE[:VAT]"]),
        (["x:Cola:25"], ["'x:Cola:25'", "ITEM", "whole number"]),
        (["1:Cola:-5"], ["slot 1 (Cola)", "price", "-5"]),
        (["1:Cola:2500:20000"], ["slot 1 (Cola)", "vat_rate", "20000"]),
        (["70000:Cola:2500"], ["slot 70000", "item", "0..65535"]),
        (["1::2500"], ["slot 1", "name"]),
        (["1:Cola:2500", "1:Fanta:3000"], ["item 1 ", "also slots[0]"]),
    ],
)
def test_add_machine_refuses_a_bad_slot_in_one_line_and_stores_nothing(
    tmp_path: Path, slots: list[str], expected: list[str]
) -> None:
    flags = [part for text in slots for part in ("--slot", text)]
    line = one_line_error(tmp_path, "cloud", "add-machine", "m1", "Lobby", *flags)
    for text in expected:
        assert text in line
    assert not (tmp_path / "data" / "cloud.db").exists()  # refused before the database


def test_add_machine_refuses_a_bad_machine_id_in_one_line(tmp_path: Path) -> None:
    line = one_line_error(tmp_path, "cloud", "add-machine", "bad id!", "Lobby")
    assert "machine id" in line
    assert "'bad id!'" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["cloud", "migrate"],
        ["cloud", "add-machine", "m1", "Lobby", "--slot", "1:Cola:2500"],
        ["cloud", "serve", "--port", "0"],
    ],
)
def test_an_unreachable_database_is_one_line(tmp_path: Path, argv: list[str]) -> None:
    line = one_line_error(tmp_path, *argv, database_url=UNREACHABLE)
    assert "database" in line
    assert "127.0.0.1:1" in line


def sqlite(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.mark.parametrize("argv", [["cloud", "migrate"], ["cloud", "serve", "--port", "0"]])
def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path, argv: list[str]) -> None:
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("hello\n" * 100)
    line = one_line_error(tmp_path, *argv, database_url=sqlite(not_a_database))
    assert "database" in line
    assert "notes.txt" in line
    assert not_a_database.read_text() == "hello\n" * 100


def test_a_sqlite_path_below_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    line = one_line_error(
        tmp_path, "cloud", "migrate", database_url=sqlite(tmp_path / "afile" / "cloud.db")
    )
    assert "database" in line
    assert "afile" in line


@pytest.mark.parametrize("url", ["not a url", "mysql://someone@127.0.0.1/shop"])
def test_a_database_url_we_cannot_use_is_one_line(tmp_path: Path, url: str) -> None:
    line = one_line_error(tmp_path, "cloud", "migrate", database_url=url)
    assert "VENDGATE_DATABASE_URL" in line


def test_the_edge_with_an_unusable_data_dir_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    argv = ["--machine-id", "m1", "--serial", "/dev/null", "--mqtt-url", "mqtt://127.0.0.1:1"]
    line = one_line_error(tmp_path, "edge", *argv, "--data-dir", str(tmp_path / "afile"))
    assert "afile" in line


@pytest.mark.parametrize(
    ("variable", "value", "wanted"),
    [
        ("VENDGATE_HEARTBEAT_WINDOW_S", "abc", "a non-negative number"),
        ("VENDGATE_APPROVAL_TIMEOUT", "-1", "a non-negative number"),
        ("VENDGATE_PING_TIMEOUT_S", "nan", "a non-negative number"),
        ("VENDGATE_SCAN_RATE_BURST", "2.5", "a whole number"),
    ],
)
def test_a_bad_number_in_a_setting_is_one_line_naming_the_variable(
    tmp_path: Path, variable: str, value: str, wanted: str
) -> None:
    line = one_line_error(tmp_path, "cloud", "migrate", extra_env={variable: value})
    assert line == f"vendgate: error: {variable}={value!r}: must be {wanted}"

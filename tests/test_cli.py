"""The ``vendgate`` command line: help on every subcommand, and ``vendgate broker`` for real."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

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

"""``vendgate board-sim`` as a process: its first output line, its control socket, signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vendgate.commands.board_sim import parse_control

WAIT_S = 10


@pytest.fixture
def board_sim(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    slots = tmp_path / "slots.toml"
    slots.write_text('[[slots]]\nnumber = 7\nitem = 70\nname = "Tea"\nprice = 1200\n')
    capture = tmp_path / "bus.log"
    command = [sys.executable, "-m", "vendgate", "board-sim", "--control", "127.0.0.1:0"]
    command += ["--slots", str(slots), "--capture", str(capture), "--poll-interval", "0.05"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process, capture
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(WAIT_S)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.pty
def test_prints_the_device_then_answers_the_keypad_and_stops_on_sigterm(
    board_sim: tuple[subprocess.Popen[str], Path],
) -> None:
    process, capture = board_sim
    assert process.stdout is not None
    device = process.stdout.readline().strip()
    assert device.startswith("/dev/")
    assert os.path.exists(device)
    control = process.stdout.readline().strip()
    host, port = control.removeprefix("control ").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=WAIT_S) as sock:
        lines = sock.makefile("rw", encoding="utf-8", newline="\n")
        for command, reply in [
            ("status", "ok power=on reader=reset session=none"),
            ("jam 7", "ok slot 7 (Tea) will jam on its next vend"),
            ("select 7", "error cannot select: the cashless reader is reset"),
            ("select 8", "error cannot select: the cashless reader is reset"),
            ("dance", "error unknown command 'dance'; try help"),
        ]:
            lines.write(command + "\n")
            lines.flush()
            assert lines.readline().rstrip("\n") == reply
    process.send_signal(signal.SIGTERM)
    assert process.wait(WAIT_S) == 0
    assert "VMC 10* 10" in capture.read_text()  # it kept resetting the absent reader


@pytest.mark.pty
def test_sigterm_with_a_control_connection_open_stops_without_a_traceback(
    board_sim: tuple[subprocess.Popen[str], Path],
) -> None:
    process, _ = board_sim
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.readline()  # the device
    host, port = process.stdout.readline().strip().removeprefix("control ").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=WAIT_S) as sock:
        lines = sock.makefile("rw", encoding="utf-8", newline="\n")
        lines.write("status\n")
        lines.flush()
        assert lines.readline().startswith("ok ")  # the session is live, waiting for a line
        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT_S) == 0
        assert lines.readline() == ""  # the board hung up
    stderr = process.stderr.read()
    assert "Traceback" not in stderr
    assert "CancelledError" not in stderr


@pytest.mark.pty
def test_keypad_lines_on_stdin(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "vendgate", "board-sim", "--control", "-"]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stdout.readline().startswith("/dev/")
        process.stdin.write("help\n\nselect 1\n")
        process.stdin.flush()
        assert process.stdout.readline().startswith("ok commands: select N")
        assert process.stdout.readline().startswith("error cannot select")
        process.send_signal(signal.SIGINT)
        assert process.wait(WAIT_S) == 0


@pytest.mark.pty
def test_a_bad_slots_file_is_a_clear_error(tmp_path: Path) -> None:
    slots = tmp_path / "slots.json"
    slots.write_text(json.dumps({"slots": [{"number": 1, "price": 100}]}))
    result = subprocess.run(
        [sys.executable, "-m", "vendgate", "board-sim", "--slots", str(slots)],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert result.returncode == 2
    assert "needs a text 'name'" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("text", "parsed"),
    [(None, None), ("-", "-"), ("0.0.0.0:7000", ("0.0.0.0", 7000)), (":7000", ("127.0.0.1", 7000))],
)
def test_control_addresses(text: str | None, parsed: object) -> None:
    assert parse_control(text) == parsed


@pytest.mark.parametrize("text", ["7000", "host:", "host:99999", "host:port"])
def test_bad_control_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_control(text)


def test_slot_flags_build_the_machine() -> None:
    from vendgate.cli import build_parser
    from vendgate.commands.board_sim import build_sim

    args = build_parser().parse_args(["board-sim", "--slot", "3:Tea:1200", "--slot", "4:Pie:900"])
    sim = build_sim(args)
    assert [(s.number, s.name, s.price) for s in sim.machine.slots] == [
        (3, "Tea", 1200),
        (4, "Pie", 900),
    ]

"""``vendgate mdb decode``: capture lines in, one JSON object per block out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vendgate.cli import main

CAPTURE = """\
# Zzzzipper trace: Necta Kikko Max VMC <-> Pax D200 reader
VMC 13* 00 00 0A 00 06 23
CD 00*

VMC 12* 12
CD 05 00 0A 0F*
VMC 00
VMC 13* 00 00 0A 00 06 24
CD 06 0A 07 04 1B*
CD 00 00*
nonsense here
CD 05 00 05*
"""


def run_decode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> list[dict[str, Any]]:
    capture = tmp_path / "capture.txt"
    capture.write_text(text)
    assert main(["mdb", "decode", str(capture)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_decode_prints_one_object_per_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = run_decode(tmp_path, capsys, CAPTURE)
    assert len(records) == 10  # comments and blank lines skipped
    assert records[0] == {
        "dir": "VMC",
        "checksum_ok": True,
        "messages": [{"name": "VEND_REQUEST", "price": 10, "item": 6}],
    }
    assert records[1] == {"dir": "CD", "checksum_ok": True, "messages": [{"name": "ACK"}]}
    assert records[2]["messages"] == [{"name": "POLL"}]
    assert records[3]["messages"] == [{"name": "VEND_APPROVED", "amount": 10}]
    assert records[4] == {"dir": "VMC", "checksum_ok": True, "messages": [{"name": "ACK"}]}


def test_decode_reports_a_wrong_checksum_as_false(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = run_decode(tmp_path, capsys, CAPTURE)
    assert records[5]["checksum_ok"] is False
    assert records[5]["messages"] == [{"name": "VEND_REQUEST", "price": 10, "item": 6}]


def test_decode_splits_multi_message_replies_and_tells_ack_from_just_reset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = run_decode(tmp_path, capsys, CAPTURE)
    assert records[6]["messages"] == [
        {"name": "VEND_DENIED"},
        {"name": "MALFUNCTION", "code": 7, "error": "PAYMENT_MEDIA"},
        {"name": "SESSION_CANCEL_REQUEST"},
    ]
    assert records[7]["messages"] == [{"name": "JUST_RESET"}]


def test_decode_reports_bad_lines_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = run_decode(tmp_path, capsys, CAPTURE)
    assert records[8] == {
        "error": "line must start with VMC or CD, not 'nonsense'",
        "line": 11,
        "text": "nonsense here",
    }
    assert records[9]["line"] == 12
    assert "VEND_APPROVED (05H) at byte 0 is truncated" in records[9]["error"]


def test_decode_of_a_missing_file_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mdb", "decode", str(tmp_path / "missing.txt")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "cannot read" in captured.err


def test_decode_help_documents_the_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["mdb", "decode", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "VMC 13* 00 00 0A 00 06 23" in out
    assert "checksum_ok" in out


def test_installed_command_reads_stdin() -> None:
    vendgate = Path(sys.executable).with_name("vendgate")
    result = subprocess.run(
        [str(vendgate), "mdb", "decode"],
        input="VMC 13* 00 00 0A 00 06 23\nVMC 13* 00 00 0A 00 06 22\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["checksum_ok"] is True
    assert first["messages"] == [{"name": "VEND_REQUEST", "price": 10, "item": 6}]
    assert second["checksum_ok"] is False

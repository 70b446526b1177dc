"""``vendgate edge`` on the command line: help, and refusing a bad configuration clearly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vendgate.cli import main


def test_help_lists_every_setting_with_its_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["edge", "--help"])

    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for flag in ("--machine-id", "--mqtt-url", "--serial", "--data-dir", "--mqtt-prefix"):
        assert flag in out
    assert "VENDGATE_MQTT_PASSWORD" in out


def test_a_missing_setting_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VENDGATE_MACHINE_ID", raising=False)

    assert main(["edge", "--serial", "loop://"]) == 2
    assert "--machine-id or set VENDGATE_MACHINE_ID" in capsys.readouterr().err


def test_a_bad_url_is_refused_before_anything_starts(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vendgate", "edge", "--machine-id", "m1", "--serial", "loop://",
         "--mqtt-url", "http://broker", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )  # fmt: skip

    assert result.returncode == 2
    assert "mqtt_url must start with mqtt:// or mqtts://" in result.stderr

"""The cloud benchmark runs: ``benchmarks/bench_cloud.py --quick`` on the embedded tier.

A smoke test, not a measurement: it asserts no figure, only that both phases (the cloud and the
floor) finish with every purchase settled and the money rules holding on each, as read back
from the Vipps simulator by the benchmark itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_cloud.py"

pytestmark = [pytest.mark.amqtt, pytest.mark.slow]


def test_a_quick_run_settles_every_purchase_and_keeps_the_money_rules(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    command = [sys.executable, str(BENCHMARK), "--quick", "--tier", "embedded", "--machines", "4"]
    run = subprocess.run(
        [*command, "--json", str(figures)], capture_output=True, text=True, timeout=170
    )
    assert run.returncode == 0, run.stdout + run.stderr
    phases = json.loads(figures.read_text())["phases"]
    assert [phase["name"] for phase in phases] == ["cloud", "floor"]
    for phase in phases:
        assert phase["started"] > 0, phase["name"]
        assert phase["settled"] == phase["started"], (phase["name"], phase["refused"])
        money = phase["money"]
        assert money["checked"] == phase["settled"], phase["name"]
        assert money["violations"] == [], phase["name"]
        assert money["unsettled"] == 0, phase["name"]
    assert "money rules" in run.stdout

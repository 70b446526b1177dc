"""``vendgate demo``: the whole system in one process, checked from its JSON report.

The runs are real (``vendgate demo --json`` as a subprocess: its own broker, simulator, cloud,
ptys and edge agents, and its logging setup stays out of this process). The assertions
recompute every expectation from the reported amounts rather than trusting the demo's own
``ok``. The pure part (``problems``, the order plan) is tested without I/O.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from vendgate.demo import (
    MACHINES,
    Purchase,
    Scenario,
    extra_orders,
    problems,
    scenario_orders,
)

RUN_LIMIT_S = 120
MAX_PRICE = {spec.machine_id: spec.max_price for spec in MACHINES}
PRICE = {(spec.machine_id, slot.item): slot.price for spec in MACHINES for slot in spec.slots}


def demo(*args: str) -> tuple[int, dict[str, Any], str]:
    """Run ``vendgate demo --json ARGS``: exit status, the JSON last line, the progress."""
    done = subprocess.run(
        [sys.executable, "-m", "vendgate", "demo", "--json", *args],
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
        check=False,
    )
    last_line = done.stdout.strip().splitlines()[-1]
    return done.returncode, json.loads(last_line), done.stderr


def of(report: dict[str, Any], scenario: str) -> list[dict[str, Any]]:
    return [p for p in report["purchases"] if p["scenario"] == scenario]


def assert_paid(p: dict[str, Any]) -> None:
    assert p["outcome"] == "paid", p
    assert p["price"] == PRICE[(p["machine_id"], p["item"])], p
    assert p["authorized"] == MAX_PRICE[p["machine_id"]], p
    assert p["captured"] == p["price"], p
    assert p["cancelled"] == p["authorized"] - p["price"], p
    assert p["receipt"] is True, p


def assert_not_charged(p: dict[str, Any]) -> None:
    assert p["outcome"] == "not_charged", p
    assert p["reference"] is not None, p
    assert p["authorized"] == MAX_PRICE[p["machine_id"]], p
    assert p["captured"] == 0, p
    assert p["cancelled"] == p["authorized"], p
    assert p["receipt"] is False, p


def assert_no_payment(p: dict[str, Any]) -> None:
    assert p["outcome"] == "busy", p
    assert p["reference"] is None, p
    assert (p["authorized"], p["captured"], p["cancelled"]) == (0, 0, 0), p
    assert p["receipt"] is False, p


# -- the real runs ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.pty
@pytest.mark.amqtt
def test_the_demo_meets_every_expectation() -> None:
    status, report, progress = demo()

    assert status == 0, progress
    assert report["ok"] is True
    # The machines logged in with their issued passwords; strangers did not get in.
    assert re.search(r"broker refuses strangers: no login: .*Not authori[sz]ed", progress)
    assert re.search(r"m1 with a wrong password: .*Bad user name or password", progress)
    assert [p["scenario"] for p in report["purchases"]] == ["normal", "jam", "timeout", "busy"]
    (normal,) = of(report, "normal")
    assert_paid(normal)
    for failed in of(report, "jam") + of(report, "timeout"):
        assert_not_charged(failed)
    (busy,) = of(report, "busy")
    assert_no_payment(busy)
    (timeout,) = of(report, "timeout")
    assert busy["machine_id"] == timeout["machine_id"]  # refused while that customer dawdled
    references = [p["reference"] for p in report["purchases"] if p["reference"]]
    assert len(set(references)) == 3


@pytest.mark.slow
@pytest.mark.pty
@pytest.mark.amqtt
def test_more_purchases_spread_over_the_machines() -> None:
    status, report, progress = demo("--purchases", "3")

    assert status == 0, progress
    assert report["ok"] is True
    normal = of(report, "normal")
    assert len(normal) == 4
    for purchase in normal:
        assert_paid(purchase)
    assert {p["machine_id"] for p in normal[1:]} == {spec.machine_id for spec in MACHINES}
    assert "all 7 purchases as expected" in progress
    assert "machine  scenario" in progress  # the summary table, on stderr beside the progress


def test_a_negative_number_of_purchases_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vendgate", "demo", "--purchases", "-1"],
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
        check=False,
    )
    assert done.returncode == 2
    assert "--purchases" in done.stderr


# -- the expectations, without I/O ----------------------------------------------------------


def paid(**changes: Any) -> Purchase:
    fields: dict[str, Any] = {
        "machine_id": "m1",
        "scenario": Scenario.NORMAL,
        "reference": "vs-1",
        "outcome": "paid",
        "item": 1,
        "price": 2500,
        "authorized": 3500,
        "captured": 2500,
        "cancelled": 1000,
        "receipt": True,
    }
    return Purchase(**{**fields, **changes})


def not_charged(**changes: Any) -> Purchase:
    nothing_sold = {"outcome": "not_charged", "captured": 0, "cancelled": 3500, "receipt": False}
    return paid(**{"scenario": Scenario.JAM, **nothing_sold, **changes})


def test_a_purchase_that_kept_the_rules_has_no_problems() -> None:
    assert problems(paid(), 3500) == []
    assert problems(not_charged(), 3500) == []
    assert problems(Purchase("m3", Scenario.BUSY, outcome="busy"), 3000) == []


@pytest.mark.parametrize(
    ("purchase", "complaint"),
    [
        (paid(captured=3500, cancelled=0), "captured 3500"),
        (paid(cancelled=0), "cancelled 0"),
        (paid(receipt=False), "no receipt"),
        (paid(outcome="not_charged"), "expected 'paid'"),
        (paid(authorized=2500), "highest price"),
        (not_charged(captured=100, cancelled=3400), "captured 100"),
        (not_charged(cancelled=1000), "expected everything"),
        (not_charged(receipt=True), "receipt was posted"),
        (not_charged(reference=None), "no payment was created"),
        (Purchase("m3", Scenario.BUSY, reference="vs-2", outcome="busy"), "busy machine"),
        (Purchase("m3", Scenario.BUSY, outcome="offline"), "not 'busy'"),
        (paid(error="TimeoutError"), "TimeoutError"),
    ],
)
def test_each_broken_rule_is_named(purchase: Purchase, complaint: str) -> None:
    found = problems(purchase, 3500)
    assert any(complaint in problem for problem in found), found


def test_the_scenarios_share_the_third_machine_and_extras_rotate() -> None:
    scenarios = scenario_orders()
    assert [o.scenario for o in scenarios] == list(Scenario)
    assert scenarios[2].machine == scenarios[3].machine  # the busy scan meets the walk-away
    extras = extra_orders(7)
    assert [o.machine.machine_id for o in extras] == ["m1", "m2", "m3", "m1", "m2", "m3", "m1"]
    assert [o.selection for o in extras] == [1, 1, 1, 2, 2, 2, 3]

"""Price authority in the edge core: the planogram arrives in ``cmd/config``, is validated,
kept across restarts and handed to the reader (``ApplySettings``); events report both the price
charged and the VMC's price.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

from vendgate.edge.core import (
    Action,
    ApplySettings,
    ItemApproved,
    ItemResult,
    Persist,
    SessionEnded,
    SessionFunded,
)
from vendgate.protocol import Money
from vendgate.protocol.mqtt import Config, Dispensed, DispensedItem, Ended, EndReason, decode

if TYPE_CHECKING:
    from conftest import CoreHarness

WIRE_PLANOGRAM = [{"item": 11, "price": 2500}, {"item": 12, "price": 3500}]
PLANOGRAM = {11: 2500, 12: 3500}


def config(harness: CoreHarness, **settings: Any) -> list[Action]:
    return harness.command(Config.create(now=harness.now, settings=settings))


def applied(actions: Sequence[Action]) -> ApplySettings:
    (apply,) = [a for a in actions if isinstance(a, ApplySettings)]
    return apply


def test_before_any_config_the_reader_gets_planogram_mode_and_no_planogram(
    harness: CoreHarness,
) -> None:
    apply = applied(harness.restart())

    assert (apply.settings.price_mode, apply.settings.planogram) == ("planogram", None)


def test_a_planogram_in_config_reaches_the_reader_and_survives_a_restart(
    harness: CoreHarness,
) -> None:
    actions = config(harness, planogram=WIRE_PLANOGRAM, price_mode="planogram")

    assert isinstance(actions[0], Persist)  # durable before it is applied
    assert applied(actions).settings.planogram == PLANOGRAM
    assert "config.applied" in harness.logged(actions)
    after_restart = applied(harness.restart())
    assert (after_restart.settings.price_mode, after_restart.settings.planogram) == (
        "planogram",
        PLANOGRAM,
    )


def test_vmc_prices_can_be_chosen_and_a_new_planogram_replaces_the_old(
    harness: CoreHarness,
) -> None:
    config(harness, planogram=WIRE_PLANOGRAM)

    apply = applied(config(harness, planogram=[{"item": 5, "price": 100}], price_mode="vmc"))

    assert (apply.settings.price_mode, apply.settings.planogram) == ("vmc", {5: 100})


@pytest.mark.parametrize(
    "planogram",
    [
        {"11": 2500},
        [{"item": 11}],
        [{"item": 11, "price": 0}],
        [{"item": 11, "price": -100}],
        [{"item": 11, "price": 25.0}],
        [{"item": 11, "price": True}],
        [{"item": "11", "price": 2500}],
        [{"item": 0xFFFF, "price": 2500}],
        [{"item": 11, "price": 2**31}],
        [{"item": 11, "price": 2500}, {"item": 11, "price": 3000}],
        [{"item": 11, "price": 2500}, "cola"],
        None,
    ],
    ids=[
        "not-a-list",
        "no-price",
        "zero",
        "negative",
        "float",
        "bool",
        "text-item",
        "item-ffff",
        "over-32-bits",
        "item-twice",
        "not-an-object",
        "null",
    ],
)
def test_a_bad_planogram_is_refused_with_a_log_line_and_the_old_one_kept(
    harness: CoreHarness, planogram: object
) -> None:
    config(harness, planogram=WIRE_PLANOGRAM)

    actions = config(harness, planogram=planogram)

    assert "config.setting_refused" in harness.logged(actions)
    assert not any(isinstance(a, ApplySettings | Persist) for a in actions)
    assert harness.core.settings.planogram == PLANOGRAM
    assert applied(harness.restart()).settings.planogram == PLANOGRAM


@pytest.mark.parametrize("mode", ["cheap", "", 1, None, ["vmc"]])
def test_an_unknown_price_mode_is_refused(harness: CoreHarness, mode: object) -> None:
    actions = config(harness, price_mode=mode)

    assert "config.setting_refused" in harness.logged(actions)
    assert harness.core.settings.price_mode == "planogram"


def test_dispensed_and_ended_report_the_price_charged_and_the_vmc_price(
    online: CoreHarness,
) -> None:
    online.command(online.authorized("v1", 5000))
    online.feed(SessionFunded(5000))
    online.feed(ItemApproved(11, 2500, vmc_price=3500))
    (dispensed,) = online.published(
        online.feed(ItemResult(11, 2500, True, vmc_price=3500)), "evt/dispensed"
    )
    (ended,) = online.published(online.feed(SessionEnded(EndReason.COMPLETED)), "evt/ended")

    assert isinstance(dispensed, Dispensed)
    assert (dispensed.price, dispensed.vmc_price) == (Money(2500, "NOK"), Money(3500, "NOK"))
    assert isinstance(ended, Ended)
    assert ended.dispensed == (
        DispensedItem(
            item=11, price=Money(2500, "NOK"), success=True, vmc_price=Money(3500, "NOK")
        ),
    )
    assert ended.total == Money(2500, "NOK")


def test_an_approved_item_lost_in_a_restart_is_failed_with_both_prices(
    harness: CoreHarness,
) -> None:
    harness.command(harness.authorized("v1", 5000))
    harness.feed(SessionFunded(5000))
    harness.feed(ItemApproved(11, 2500, vmc_price=3500))

    harness.restart()

    events = [decode(e.name, e.payload) for e in harness.core.outbox]
    ended = events[-1]
    assert isinstance(ended, Ended)
    (line,) = ended.dispensed
    assert (line.success, line.price, line.vmc_price) == (
        False,
        Money(2500, "NOK"),
        Money(3500, "NOK"),
    )

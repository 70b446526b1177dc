"""The money arithmetic: reserve, partial capture, cancel of the remainder, refunds, the
documented error codes, and idempotent replays, through the client against the simulator;
plus the pure ledger alone, with a property test of its invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from vipps_support import vend_payment

from vendgate.cloud.vipps import Amount, VippsApiError, VippsClient, VippsConflict
from vendgate.cloud.vippssim import LedgerPayment, RuleViolation, VippsSimulator, ledger
from vendgate.protocol import ManualClock


def nok(value: int) -> Amount:
    return Amount(value, "NOK")


async def authorized(vipps: VippsClient, sim: VippsSimulator, ref: str, value: int = 5000) -> None:
    await vipps.epayment.create_payment(vend_payment(ref, value), idempotency_key=f"{ref}-c")
    await vipps.epayment.force_approve(ref)


async def error_code(call: object) -> tuple[int, str | None]:
    with pytest.raises(VippsApiError) as info:
        await call  # type: ignore[misc]
    return info.value.status, info.value.error_code


async def test_capture_then_cancel_releases_the_remainder(
    vipps: VippsClient, sim: VippsSimulator
) -> None:
    await authorized(vipps, sim, "vend-money-0001")
    await vipps.epayment.capture("vend-money-0001", nok(1500), idempotency_key="m1-cap")
    done = await vipps.epayment.cancel("vend-money-0001", idempotency_key="m1-can")

    assert done.state == "AUTHORIZED"
    aggregate = (await vipps.epayment.get_payment("vend-money-0001")).aggregate
    assert aggregate.authorized_amount == nok(5000)
    assert aggregate.captured_amount == nok(1500)
    assert aggregate.cancelled_amount == nok(3500)
    assert aggregate.refunded_amount == nok(0)


async def test_partial_captures_add_up_to_the_authorized_amount(
    vipps: VippsClient, sim: VippsSimulator
) -> None:
    await authorized(vipps, sim, "vend-money-0002")
    for i, value in enumerate((1500, 2000, 1500)):
        await vipps.epayment.capture("vend-money-0002", nok(value), idempotency_key=f"m2-cap-{i}")
    payment = await vipps.epayment.get_payment("vend-money-0002")
    assert payment.aggregate.captured_amount == nok(5000)
    assert await error_code(vipps.epayment.cancel("vend-money-0002", idempotency_key="m2-can")) == (
        400,
        "6040",
    )


async def test_capture_over_the_remainder_is_6090(vipps: VippsClient, sim: VippsSimulator) -> None:
    await authorized(vipps, sim, "vend-money-0003")
    await vipps.epayment.capture("vend-money-0003", nok(4000), idempotency_key="m3-cap-1")
    call = vipps.epayment.capture("vend-money-0003", nok(1001), idempotency_key="m3-cap-2")
    assert await error_code(call) == (400, "6090")
    payment = await vipps.epayment.get_payment("vend-money-0003")
    assert payment.aggregate.captured_amount == nok(4000)


async def test_capture_before_authorization_is_6080(vipps: VippsClient) -> None:
    await vipps.epayment.create_payment(vend_payment("vend-money-0004"), idempotency_key="m4-c")
    call = vipps.epayment.capture("vend-money-0004", nok(100), idempotency_key="m4-cap")
    assert await error_code(call) == (400, "6080")


async def test_cancel_transaction_only_on_an_authorized_payment_is_6060(
    vipps: VippsClient, sim: VippsSimulator
) -> None:
    await authorized(vipps, sim, "vend-money-0005")
    call = vipps.epayment.cancel(
        "vend-money-0005", idempotency_key="m5", cancel_transaction_only=True
    )
    assert await error_code(call) == (400, "6060")
    assert (await vipps.epayment.get_payment("vend-money-0005")).aggregate.cancelled_amount == nok(
        0
    )


async def test_cancel_before_authorization_terminates(
    vipps: VippsClient, sim: VippsSimulator
) -> None:
    await vipps.epayment.create_payment(vend_payment("vend-money-0006"), idempotency_key="m6-c")
    done = await vipps.epayment.cancel(
        "vend-money-0006", idempotency_key="m6", cancel_transaction_only=True
    )
    assert done.state == "TERMINATED"
    call = vipps.epayment.force_approve("vend-money-0006")  # the customer is too late
    assert (await error_code(call))[0] == 400


async def test_replayed_capture_with_the_same_key_captures_once(
    vipps: VippsClient, sim: VippsSimulator
) -> None:
    await authorized(vipps, sim, "vend-money-0007")
    first = await vipps.epayment.capture("vend-money-0007", nok(1500), idempotency_key="m7-cap")
    again = await vipps.epayment.capture("vend-money-0007", nok(1500), idempotency_key="m7-cap")
    assert first == again
    events = await vipps.epayment.get_events("vend-money-0007")
    assert [e.name for e in events].count("CAPTURED") == 1
    assert (await vipps.epayment.get_payment("vend-money-0007")).aggregate.captured_amount == nok(
        1500
    )


async def test_same_key_with_another_body_is_409(vipps: VippsClient, sim: VippsSimulator) -> None:
    await authorized(vipps, sim, "vend-money-0008")
    await vipps.epayment.capture("vend-money-0008", nok(1500), idempotency_key="m8-cap")
    with pytest.raises(VippsConflict) as info:
        await vipps.epayment.capture("vend-money-0008", nok(1600), idempotency_key="m8-cap")
    assert info.value.error_code == "4010"


async def test_a_refusal_stays_a_refusal_for_its_key(
    vipps: VippsClient, sim: VippsSimulator
) -> None:
    await vipps.epayment.create_payment(vend_payment("vend-money-0009"), idempotency_key="m9-c")
    call = vipps.epayment.capture("vend-money-0009", nok(100), idempotency_key="m9-cap")
    assert await error_code(call) == (400, "6080")
    await vipps.epayment.force_approve("vend-money-0009")
    again = vipps.epayment.capture("vend-money-0009", nok(100), idempotency_key="m9-cap")
    assert await error_code(again) == (400, "6080")


async def test_duplicate_reference_and_create_replay(vipps: VippsClient) -> None:
    first = await vipps.epayment.create_payment(
        vend_payment("vend-money-0010"), idempotency_key="m10"
    )
    replay = await vipps.epayment.create_payment(
        vend_payment("vend-money-0010"), idempotency_key="m10"
    )
    assert first == replay
    call = vipps.epayment.create_payment(vend_payment("vend-money-0010"), idempotency_key="m10-b")
    assert await error_code(call) == (409, "4150")


async def test_refund_up_to_the_captured_amount(vipps: VippsClient, sim: VippsSimulator) -> None:
    await authorized(vipps, sim, "vend-money-0011")
    await vipps.epayment.capture("vend-money-0011", nok(2000), idempotency_key="m11-cap")
    await vipps.epayment.refund("vend-money-0011", nok(1500), idempotency_key="m11-ref-1")
    call = vipps.epayment.refund("vend-money-0011", nok(501), idempotency_key="m11-ref-2")
    assert (await error_code(call))[0] == 400
    payment = await vipps.epayment.get_payment("vend-money-0011")
    assert (payment.state, payment.aggregate.refunded_amount) == ("AUTHORIZED", nok(1500))


async def test_unapproved_payment_expires(
    vipps: VippsClient, sim: VippsSimulator, clock: ManualClock
) -> None:
    sim.settings.payment_expiry = 300
    await vipps.epayment.create_payment(vend_payment("vend-money-0012"), idempotency_key="m12")
    clock.advance(299)
    assert (await vipps.epayment.get_payment("vend-money-0012")).state == "CREATED"
    clock.advance(1)
    assert (await vipps.epayment.get_payment("vend-money-0012")).state == "EXPIRED"
    events = [e.name for e in await vipps.epayment.get_events("vend-money-0012")]
    assert events == ["CREATED", "EXPIRED"]


async def test_customer_rejects(vipps: VippsClient, sim: VippsSimulator, sim_http: object) -> None:
    await vipps.epayment.create_payment(vend_payment("vend-money-0013"), idempotency_key="m13")
    sim.payments.reject(sim.payments.find("vend-money-0013"))
    assert (await vipps.epayment.get_payment("vend-money-0013")).state == "ABORTED"


# -- the pure ledger ---------------------------------------------------------------------------

_counter = iter(range(10**9))


def psp() -> str:
    return str(next(_counter))


def fresh(amount: int = 5000) -> LedgerPayment:
    return ledger.open_payment("ref-00001", amount, "NOK", 0.0, 600.0, psp(), "k")


def test_ledger_final_states_refuse_everything() -> None:
    payment = fresh()
    ledger.abort(payment, 1.0, psp)
    for act in (
        lambda: ledger.authorize(payment, 2.0, psp),
        lambda: ledger.capture(payment, 100, 2.0, psp, "k2"),
        lambda: ledger.cancel(payment, False, 2.0, psp, "k3"),
    ):
        with pytest.raises(RuleViolation):
            act()
    assert payment.state == "ABORTED"


@given(
    amount=st.integers(100, 100_000),
    operations=st.lists(
        st.one_of(
            st.tuples(st.just("capture"), st.integers(0, 120_000)),
            st.tuples(st.just("refund"), st.integers(0, 120_000)),
            st.tuples(st.just("cancel"), st.just(0)),
        ),
        max_size=12,
    ),
)
def test_ledger_never_moves_more_than_was_authorized(
    amount: int, operations: list[tuple[str, int]]
) -> None:
    payment = fresh(amount)
    ledger.authorize(payment, 1.0, psp)
    for name, value in operations:
        try:
            if name == "capture":
                ledger.capture(payment, value, 2.0, psp, "k")
            elif name == "refund":
                ledger.refund(payment, value, 2.0, psp, "k")
            else:
                ledger.cancel(payment, False, 2.0, psp, "k")
        except RuleViolation:
            pass
        assert payment.captured + payment.cancelled <= payment.authorized == amount
        assert 0 <= payment.refunded <= payment.captured
        assert payment.state == "AUTHORIZED"
    captured = sum(e.amount for e in payment.events if e.name == "CAPTURED")
    assert captured == payment.captured

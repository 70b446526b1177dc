"""Reader and VMC through a null modem that loses, repeats, damages and splits what it carries.

The deterministic tests lose one chosen block; the hypothesis test throws random customers,
power cuts, line cuts and noise at the pair and checks the money rules against the VMC's
ground truth (``Vmc.outcomes``):

- the reader never approves past the session's credit, and never has two approvals open;
- every success it reports is a vend the machine delivered, or one §7.4.7 makes a success
  (the board reset while the vend was approved and its outcome unacknowledged);
- every success the reader acknowledged is reported exactly once;
- the machine never hands out more than the session's credit.
"""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_mdb_pair_kit import Faults, Pair

from vendgate.boardsim import KeypadError, SessionOpened, VmcConfig
from vendgate.edge.cashless import (
    ApprovalSent,
    CashlessConfig,
    LocalMdbError,
    ReaderEvent,
    SessionStarted,
    VendFailed,
    VendSucceeded,
)

COLA_APPROVED = "CD 05 07 D0 DC*"
COLA_SUCCESS = "VMC 13* 02 00 65 7A"
VMC_ACK = "VMC 00"


def single_vend(pair: Pair) -> None:
    pair.start()
    pair.open_session(2500)
    pair.vmc.select(1, pair.now)
    pair.run_for(5)


def successes(pair: Pair) -> list[VendSucceeded]:
    return [e for e in pair.reader_events if isinstance(e, VendSucceeded)]


def test_split_frames_and_noise_change_nothing_on_the_bus() -> None:
    clean = Pair()
    single_vend(clean)
    noisy = Pair(
        to_reader=Faults(random.Random(1), noise=0.5, split=True),
        to_vmc=Faults(random.Random(2), noise=0.5, split=True),
    )
    single_vend(noisy)
    assert noisy.trace == clean.trace
    assert noisy.reader_events == clean.reader_events
    assert noisy.reader.link_stats.dropped_bytes > 0


def test_a_lost_approval_is_asked_again_and_approved_once() -> None:
    pair = Pair(to_vmc=Faults(drop_once=[COLA_APPROVED]))
    single_vend(pair)
    approvals = [e for e in pair.reader_events if isinstance(e, ApprovalSent)]
    assert len(approvals) == 1
    assert successes(pair) == [VendSucceeded(101, 2000, 2000)]
    assert pair.take_trace().count("VMC 13* 00 07 D0 00 65 4F") == 2  # the VMC asked twice


def test_a_lost_ack_of_vend_success_does_not_count_twice() -> None:
    pair = Pair()
    pair.start()
    pair.open_session(2500)
    pair.vmc.select(1, pair.now)
    pair.run_for(0.45)  # polled at +0.2 and +0.4; the motor stops at +0.5
    pair.to_vmc.drop_once = ["CD 00*"]  # so this is the ACK of VEND SUCCESS
    pair.run_for(5)
    assert pair.take_trace().count(COLA_SUCCESS) == 2
    assert successes(pair) == [VendSucceeded(101, 2000, 2000)]


def test_a_lost_vmc_ack_of_the_approval_is_made_good_at_the_next_poll() -> None:
    pair = Pair(to_reader=Faults(drop_once=[VMC_ACK]))
    pair.start()
    pair.open_session(2500)
    pair.to_reader.drop_once = [VMC_ACK]  # the VMC's ACK of VEND APPROVED
    pair.vmc.select(1, pair.now)
    pair.run_for(0.3)  # dispensing: the reader repeats VEND APPROVED at a POLL, the VMC ACKs
    pair.vmc.power_cycle(pair.now, off_s=0.5)
    pair.run_for(3)
    assert successes(pair) == [VendSucceeded(101, 2000, 2000)]  # §7.4.7 with a confirmed approval


def test_every_block_doubled_still_gives_one_vend() -> None:
    pair = Pair(
        to_reader=Faults(random.Random(3), duplicate_block=1.0),
        to_vmc=Faults(random.Random(4), duplicate_block=1.0),
    )
    single_vend(pair)
    assert successes(pair) == [VendSucceeded(101, 2000, 2000)]
    assert pair.machine.slot(1).stock == 4


def test_a_noisy_line_still_gets_the_vend_through() -> None:
    pair = Pair(
        to_reader=Faults(random.Random(5), drop_byte=0.01, corrupt_byte=0.01, split=True),
        to_vmc=Faults(random.Random(6), drop_byte=0.01, corrupt_byte=0.01, split=True),
    )
    pair.run_until(5.0)
    pair.open_session(2500)
    pair.vmc.select(1, pair.now)
    pair.run_for(10)
    assert successes(pair) == [VendSucceeded(101, 2000, 2000)]
    assert pair.reader.link_stats.dropped_frames + pair.vmc.master.link.stats.dropped_frames > 0


# --- the money property --------------------------------------------------------------------------

ACTIONS = st.one_of(
    st.tuples(st.just("begin"), st.sampled_from([500, 1500, 2000, 2500, 3500])),
    st.tuples(st.just("select"), st.integers(1, 4)),
    st.tuples(st.just("jam"), st.integers(1, 4)),
    st.tuples(st.just("keypad_cancel"), st.just(0)),
    st.tuples(st.just("reader_cancel"), st.just(0)),
    st.tuples(st.just("walk_away"), st.just(0)),
    st.tuples(st.just("power_cycle"), st.sampled_from([0.2, 1.0, 3.0])),
    st.tuples(st.just("line_cut"), st.sampled_from([0.3, 3.0, 8.0])),
    st.tuples(st.just("wait"), st.sampled_from([0.05, 0.25, 0.6, 2.0, 6.0])),
)
FAULTS = st.fixed_dictionaries(
    {
        "drop_block": st.sampled_from([0.0, 0.05, 0.3]),
        "duplicate_block": st.sampled_from([0.0, 0.1, 0.5]),
        "drop_byte": st.sampled_from([0.0, 0.005]),
        "corrupt_byte": st.sampled_from([0.0, 0.005]),
        "noise": st.sampled_from([0.0, 0.2]),
        "split": st.booleans(),
    }
)


def act(pair: Pair, action: str, value: float) -> None:
    try:
        if action == "begin":
            pair.reader.begin_session(int(value), pair.now)
        elif action == "select":
            pair.vmc.select(int(value), pair.now)
        elif action == "jam":
            pair.vmc.jam(int(value))
        elif action == "keypad_cancel":
            pair.vmc.cancel(pair.now)
        elif action == "reader_cancel":
            pair.reader.cancel_session()
        elif action == "walk_away":
            pair.vmc.walk_away()
        elif action == "power_cycle":
            pair.vmc.power_cycle(pair.now, off_s=value)
    except (LocalMdbError, KeypadError):
        pass  # refused: the reader or the keypad said no, as it may
    if action == "line_cut":
        pair.to_reader.down = pair.to_vmc.down = True
        pair.run_for(value)
        pair.to_reader.down = pair.to_vmc.down = False
    pair.run_for(value if action == "wait" else 0.1)


def check_credit_per_session(events: list[ReaderEvent]) -> None:
    funds, spent, open_approval = 0, 0, None
    for event in events:
        if isinstance(event, SessionStarted):
            funds, spent, open_approval = event.funds, 0, None
        elif isinstance(event, ApprovalSent):
            assert open_approval is None, "two approvals open at once"
            assert spent + event.price <= funds, "approved past the credit"
            open_approval = event
        elif isinstance(event, VendSucceeded | VendFailed):
            assert open_approval is not None, "an outcome for no approved vend"
            assert event.price == open_approval.price
            spent += event.price if isinstance(event, VendSucceeded) else 0
            open_approval = None
        assert spent <= funds


def check_against_the_machine(pair: Pair) -> None:
    reported = Counter(
        (e.item, e.price) for e in pair.reader_events if isinstance(e, VendSucceeded)
    )
    outcomes = pair.vmc.outcomes
    possible = Counter(
        (o.item, o.price)
        for o in outcomes
        if o.result == "success" or (o.result == "failure" and not o.reported)
    )
    acknowledged = Counter(
        (o.item, o.price) for o in outcomes if o.result == "success" and o.reported
    )
    assert reported <= possible, f"successes that did not happen: {reported - possible}"
    assert acknowledged <= reported, f"successes never reported: {acknowledged - reported}"
    opened = {e.session: e.funds for e in pair.vmc_events if isinstance(e, SessionOpened)}
    for session, funds in opened.items():
        delivered = sum(o.price for o in outcomes if o.session == session and o.result == "success")
        assert delivered <= funds, f"session {session} handed out {delivered} of {funds}"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    actions=st.lists(ACTIONS, max_size=20),
    faults=FAULTS,
    multivend=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_money_is_safe_whatever_the_line_and_the_customer_do(
    actions: list[tuple[str, float]],
    faults: dict[str, float],
    multivend: bool,
    seed: int,
) -> None:
    # The line's dice come from one seed (hypothesis shrinks seeds, actions and rates).
    rng = random.Random(seed)
    pair = Pair(
        reader_config=CashlessConfig(selection_timeout_s=5.0),
        vmc_config=VmcConfig(multivend=multivend, dispense_s=0.3),
        to_reader=Faults(rng, **faults),  # type: ignore[arg-type]
        to_vmc=Faults(rng, **faults),  # type: ignore[arg-type]
    )
    pair.run_until(1.0)
    for action, value in actions:
        act(pair, action, value)
    pair.to_reader, pair.to_vmc = Faults(), Faults()  # the line heals; everything settles
    pair.run_for(80)
    check_credit_per_session(pair.reader_events)
    check_against_the_machine(pair)
    assert pair.reader.credit_left is None, "a session is still open on the reader"
    assert pair.vmc.funds is None, "a session is still open on the board"

"""The reader's state table alone, and the config that goes with it."""

from __future__ import annotations

import pytest

from vendgate.edge.cashless import (
    TRANSITIONS,
    CashlessConfig,
    LocalMdbError,
    Move,
    State,
    transition,
)


@pytest.mark.parametrize("state", list(State))
def test_reset_leads_to_inactive_from_every_state(state: State) -> None:
    assert transition(state, Move.RESET) is State.INACTIVE


def test_error_is_left_only_by_reset() -> None:
    assert {move for (state, move) in TRANSITIONS if state is State.ERROR} == {Move.RESET}


@pytest.mark.parametrize(
    ("state", "move", "after"),
    [
        (State.INACTIVE, Move.SETUP_CONFIG, State.DISABLED),
        (State.DISABLED, Move.READER_ENABLE, State.ENABLED),
        (State.ENABLED, Move.READER_DISABLE, State.DISABLED),
        (State.ENABLED, Move.BEGIN_SESSION, State.SESSION_IDLE),
        (State.SESSION_IDLE, Move.VEND_REQUEST, State.VEND),
        (State.VEND, Move.DENY, State.SESSION_IDLE),
        (State.VEND, Move.VEND_SUCCESS, State.SESSION_IDLE),
        (State.VEND, Move.VEND_FAILURE, State.SESSION_IDLE),
        (State.SESSION_IDLE, Move.SESSION_COMPLETE, State.ENABLED),
        # tolerated repeats seen on real VMCs
        (State.ENABLED, Move.READER_ENABLE, State.ENABLED),
        (State.VEND, Move.READER_ENABLE, State.VEND),
        (State.ENABLED, Move.SESSION_COMPLETE, State.ENABLED),
        # a disable during a session waits for its end
        (State.SESSION_IDLE, Move.READER_DISABLE, State.SESSION_IDLE),
    ],
)
def test_legal_moves(state: State, move: Move, after: State) -> None:
    assert transition(state, move) is after


@pytest.mark.parametrize(
    ("state", "move"),
    [
        (State.INACTIVE, Move.READER_ENABLE),
        (State.ENABLED, Move.VEND_REQUEST),  # no "always idle": a session comes first
        (State.SESSION_IDLE, Move.VEND_SUCCESS),
        (State.VEND, Move.VEND_REQUEST),
        (State.VEND, Move.SESSION_COMPLETE),  # the vend is uninterruptible
        (State.DISABLED, Move.BEGIN_SESSION),
        (State.ERROR, Move.READER_ENABLE),
    ],
)
def test_illegal_moves_raise_local_errors(state: State, move: Move) -> None:
    with pytest.raises(LocalMdbError, match=f"{move.value} is not allowed in state"):
        transition(state, move)


def test_default_config_counts_one_ore_per_wire_unit() -> None:
    config = CashlessConfig()
    assert config.currency_code == 0x1578
    assert config.minor_units_per_step == 1
    assert config.to_scaled(2500) == config.to_minor(2500) == 2500


@pytest.mark.parametrize(
    ("currency", "scale", "places", "step", "code"),
    [("EUR", 5, 2, 5, 0x1978), ("SEK", 1, 1, 10, 0x1752), ("ISK", 1, 0, 1, 0x1352)],
)
def test_other_currencies_and_scales(
    currency: str, scale: int, places: int, step: int, code: int
) -> None:
    config = CashlessConfig(currency=currency, scale_factor=scale, decimal_places=places)
    assert config.currency_code == code
    assert config.minor_units_per_step == step
    assert config.to_scaled(step * 7 + step - 1) == 7  # rounds down
    assert config.to_minor(7) == step * 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"currency": "XXX"}, "no MDB code"),
        ({"scale_factor": 0}, "scale_factor"),
        ({"decimal_places": 3}, "smaller than a minor unit"),
        ({"max_response_time_s": 256}, "max_response_time_s"),
        ({"selection_timeout_s": 0}, "must be positive"),
    ],
)
def test_config_rejects_what_mdb_cannot_say(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CashlessConfig(**kwargs)  # type: ignore[arg-type]

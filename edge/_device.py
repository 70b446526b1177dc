"""The reader as the agent uses it, and its events turned into core inputs.

``CashlessDevice`` is the surface of ``vendgate.edge.cashless.SerialCashless`` the agent needs;
tests pass a fake with the same surface. Reader events carry wire units; ``to_input`` converts
them to minor units (the core counts money in minor units only) and passes ``SessionEnded``,
which carries no amount, as it is; planogram prices go to the reader in minor units
(``set_pricing``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Protocol, Self

from vendgate.edge import _inputs as core
from vendgate.edge.cashless import (
    ApprovalSent,
    CashlessConfig,
    PriceMode,
    ReaderEvent,
    SessionEnded,
    SessionStarted,
    VendFailed,
    VendSucceeded,
)

__all__ = ["CashlessDevice", "board_of", "to_input"]


class CashlessDevice(Protocol):
    """What the agent needs from the cashless reader (``SerialCashless`` has it)."""

    config: CashlessConfig

    @property
    def state(self) -> str: ...

    @property
    def link_up(self) -> bool: ...

    @property
    def can_begin_session(self) -> bool: ...

    def begin_session(self, funds: int) -> None:
        """Offer ``funds`` (minor units) at the next POLL; raises ``LocalMdbError`` if it can't."""

    def cancel_session(self) -> None: ...

    def set_selection_timeout(self, seconds: float) -> None: ...

    def set_pricing(self, mode: PriceMode, planogram: Mapping[int, int] | None) -> None:
        """Who prices the next vend: the planogram (minor units; None: none yet) or the VMC."""

    def events(self) -> AsyncIterator[ReaderEvent]: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def board_of(device: CashlessDevice) -> core.Board:
    return core.Board(device.state, device.link_up, device.can_begin_session)


def to_input(event: ReaderEvent, config: CashlessConfig) -> core.Input | None:
    """The core input for a reader event; ``None`` for events that are only logged."""
    if isinstance(event, SessionStarted):
        return core.SessionFunded(config.to_minor(event.funds))
    if isinstance(event, ApprovalSent):
        vmc_price = _minor(event.vmc_price, config)
        return core.ItemApproved(event.item, config.to_minor(event.price), vmc_price)
    if isinstance(event, VendSucceeded | VendFailed):
        success = isinstance(event, VendSucceeded)
        vmc_price = _minor(event.vmc_price, config)
        return core.ItemResult(event.item, config.to_minor(event.price), success, vmc_price)
    if isinstance(event, SessionEnded):
        return event
    return None


def _minor(scaled: int | None, config: CashlessConfig) -> int | None:
    return None if scaled is None else config.to_minor(scaled)

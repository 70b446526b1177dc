"""The shared vocabulary of vendgate: money, MQTT messages, the MDB cashless codec. Pure code."""

from vendgate.protocol._backoff import reconnect_delay
from vendgate.protocol._clock import Clock, ManualClock, SystemClock
from vendgate.protocol._money import (
    MAX_WIRE_VALUE,
    CurrencyMismatch,
    Money,
    MoneyError,
    currency_exponent,
)

__all__ = [
    "MAX_WIRE_VALUE",
    "Clock",
    "CurrencyMismatch",
    "ManualClock",
    "Money",
    "MoneyError",
    "SystemClock",
    "currency_exponent",
    "reconnect_delay",
]

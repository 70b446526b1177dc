"""Idempotency keys: the same key and body replay the first outcome; another body is a 409.

Vipps keeps a 4xx for a key ("a 4xx stays 4xx for that key"), so refusals are stored too.
A key is scoped to the merchant: reusing it for another operation or payment is error 4020.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from ._problems import SimProblem

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry:
    operation: str
    reference: str
    fingerprint: bytes
    outcome: object  # the stored result, or the SimProblem that was raised


class IdempotencyStore:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def run(
        self,
        key: str,
        operation: str,
        reference: str,
        fingerprint: bytes,
        conflict_code: str,
        action: Callable[[], T],
    ) -> T:
        entry = self._entries.get(key)
        if entry is not None:
            replayed = self._replay(entry, key, operation, reference, fingerprint, conflict_code)
            return cast(T, replayed)
        try:
            result = action()
        except SimProblem as problem:
            if 400 <= problem.status < 500:
                self._entries[key] = _Entry(operation, reference, fingerprint, problem)
            raise
        self._entries[key] = _Entry(operation, reference, fingerprint, result)
        return result

    def _replay(
        self,
        entry: _Entry,
        key: str,
        operation: str,
        reference: str,
        fingerprint: bytes,
        conflict_code: str,
    ) -> object:
        if (entry.operation, entry.reference) != (operation, reference):
            raise SimProblem(409, "Conflict", f"Idempotency-Key {key} already exists", code="4020")
        if entry.fingerprint != fingerprint:
            raise SimProblem(
                409,
                "Conflict",
                f"Idempotency-Key {key} was used with a different request body",
                code=conflict_code,
            )
        if isinstance(entry.outcome, SimProblem):
            raise entry.outcome
        return entry.outcome

"""The Store port: run one use case in one database transaction.

A *use case* is a generator that yields requests from :mod:`gamewallet.store.ops` and
receives their results; it returns its result or raises. A store runs it inside one database
transaction: the transaction commits when the generator returns and rolls back when it
raises (a :class:`~gamewallet.core.errors.WalletError` or a broken invariant alike). Because
a use case does no I/O of its own, the same code runs on SQLite (synchronously, on the
store's writer thread), in memory, and on PostgreSQL (each request awaited).

Write a request as ``player = yield from do(GetPlayer(...))`` to keep the result typed.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Protocol, TypeVar, cast

from gamewallet.store.ops import Op

T = TypeVar("T")
R = TypeVar("R")

#: A use case: yields requests, receives their results, returns ``T``.
UseCase = Generator[Op[Any], Any, T]


def do(op: Op[R]) -> Generator[Op[Any], Any, R]:
    """Ask the store for ``op`` and get its typed result."""
    result = yield op
    return cast(R, result)


class StoreError(Exception):
    """The database failed (connection lost, disk full…): translated from the driver."""


class Store(Protocol):
    """What the service layer needs from a database."""

    #: "memory", "sqlite" or "postgresql"
    kind: str

    async def start(self) -> None:
        """Open connections (and, for the embedded default, apply migrations)."""

    async def close(self) -> None:
        """Release every connection."""

    async def run(self, use_case: UseCase[T]) -> T:
        """Run ``use_case`` in one database transaction and return its result."""

"""Fast-path offers: a use case that also says what it does as one database request.

A :class:`FastOffer` *is* the generic use case (it forwards every generator method to it), so
every store can run it unchanged. It also carries a :class:`SeamlessRequest`, the same call as
plain data, which a store with a single-statement implementation (the PostgreSQL fast path,
:mod:`gamewallet.store.pg_fastpath`) may execute instead, in one round trip. The two must be
indistinguishable from outside: same answers, same stored bytes, same ledger.

The request carries templates, not callables, so that the database can produce the exact bytes
the Python renderer would: the response is ``body_parts`` around the balance text and the
currency, and the fingerprint is ``sha256(fp_prefix + player_id + fp_suffix)``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from gamewallet.store.ops import Op
from gamewallet.store.port import UseCase

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SeamlessRequest:
    """One seamless two-phase call as data (see ``service.seamless.WalletCall``)."""

    client_id: int
    endpoint: str  # also the idempotency scope
    kind: str  # "withdraw" | "deposit"
    call: str  # core.states.Call value: "open" | "confirm" | "rollback"
    token: str
    ext_id: str
    amount_minor: int | None
    currency: str | None
    now_ms: int
    retention_ms: int
    max_amount_minor: int
    max_balance_minor: int
    credit_limit_minor: int | None
    shards: int
    #: The free text of the call (``_note``): ``{}``, ``{"description": …}`` or ``{"reason": …}``.
    note: Mapping[str, Any]
    fp_prefix: str
    fp_suffix: str
    #: Three literal parts; the balance text and the currency go between them.
    body_parts: tuple[bytes, bytes, bytes]
    #: True when the balance comes before the currency in the response.
    balance_first: bool


@dataclass(frozen=True, slots=True)
class HrgRequest:
    """One HRG ``deposit`` / ``withdraw`` as data (see ``service.hrg``)."""

    client_id: int
    kind: str  # "deposit" | "withdraw"
    user_id: str
    transaction_code: str
    all_buckets: bool  # withdraw with allWithdraw: the amounts are ignored
    cash_minor: int
    free_minor: int
    fingerprint: str  # the request's own fingerprint (it does not depend on stored rows)
    now_ms: int
    max_amount_minor: int
    max_balance_minor: int
    credit_limit_minor: int | None
    shards: int
    #: Literal parts around the holes, and what fills each hole in order: 1 the signed total,
    #: 2 the cash balance after, 3 the free credit after, 4 the currency.
    body_parts: tuple[bytes, ...]
    hole_order: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class JdbRequest:
    """One JDB action 19 as data (see ``service.jdb.transfer``)."""

    client_id: int
    lock_key: str
    uid: str
    serial_no: str
    amount_minor: int | None  # signed; None with all_cash_out
    all_cash_out: bool
    remark: str
    now_ms: int
    limit_minor: int  # deposits and balances stay below it
    #: The longest withdrawal cooldown any game can impose: a player who left a game more
    #: recently is left to the generic path, which knows the per-game table.
    max_cooldown_ms: int
    credit_limit_minor: int | None
    shards: int


FastRequest = SeamlessRequest | HrgRequest | JdbRequest


class FastOffer(Generator[Op[Any], Any, T]):
    """The generic use case, plus the same call as a request a store may run instead.

    ``finish`` turns the store's answer (the function's output columns) into the use case's
    result; without it the answer is the response bytes.
    """

    __slots__ = ("_generic", "finish", "request")

    def __init__(
        self,
        generic: UseCase[T],
        request: FastRequest,
        finish: Callable[[Mapping[str, Any]], T] | None = None,
    ) -> None:
        self._generic = generic
        self.request = request
        self.finish = finish

    def send(self, value: Any) -> Op[Any]:
        return self._generic.send(value)

    def throw(
        self,
        typ: Any,
        val: Any = None,
        tb: TracebackType | None = None,
    ) -> Op[Any]:
        return self._generic.throw(typ, val, tb)

    def close(self) -> None:
        self._generic.close()

"""The operator-side transfer records' store vocabulary (HRG and JDB clients).

Kept apart from :mod:`gamewallet.store.ops` because they are not the wallet's money path: they
are the *operator's* journal of the deposits and withdrawals it asks a transfer server for
(table ``operator_transfers``, migration 0004). Every store answers them (the SQL stores through
:mod:`gamewallet.store.transfer_sql`, the memory store through
:mod:`gamewallet.store.transfer_memory`) and the contract suite checks each one.

Invariant: a record is settled at most once. :class:`UpdateOperatorTransfer` changes a row only
while it is ``pending``, so two processes resolving the same transfer cannot both settle it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gamewallet.store.ops import Op

#: The states of a record; ``pending`` is the only one that ever changes.
TRANSFER_STATES = ("pending", "succeeded", "failed")
TRANSFER_KINDS = ("deposit", "withdraw")


@dataclass(frozen=True, slots=True)
class OperatorTransferRecord:
    """One deposit/withdraw the operator asked a transfer server for, and what became of it.

    ``amount_minor`` and ``free_minor`` are signed as the player's balance moves (a withdraw
    is negative); ``amount_minor`` is None for "withdraw everything". ``result`` is what the
    server reported once it succeeded (or why it failed), ``attempts`` counts the sends.
    """

    id: int
    protocol: str  # "hrg" | "jdb"
    counterparty: str  # "<agentId>@<base URL>" or "<dc>/<parent>@<base URL>"
    transfer_id: str  # HRG transactionCode, JDB serialNo
    user_id: str
    kind: str  # "deposit" | "withdraw"
    amount_minor: int | None
    free_minor: int
    remark: str
    state: str  # "pending" | "succeeded" | "failed"
    attempts: int
    last_error: str | None
    result: Mapping[str, Any] | None
    created_at_ms: int
    updated_at_ms: int
    last_sent_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class InsertOperatorTransfer(Op[OperatorTransferRecord | None]):
    """Record a transfer as ``pending`` before it is first sent; None if (protocol,
    counterparty, transfer_id) is taken (the unique key decides)."""

    protocol: str
    counterparty: str
    transfer_id: str
    user_id: str
    kind: str
    amount_minor: int | None
    free_minor: int
    remark: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class GetOperatorTransfer(Op[OperatorTransferRecord | None]):
    """One record by id, or by (protocol, counterparty, transfer_id)."""

    record_id: int | None = None
    protocol: str | None = None
    counterparty: str | None = None
    transfer_id: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateOperatorTransfer(Op[OperatorTransferRecord | None]):
    """Change a *pending* record; None (and nothing changed) if it is settled already.

    ``state`` is the new state (pending to only note an attempt or an error); ``sent``
    counts one more send at ``now_ms``; ``last_error`` and ``result`` replace the stored
    values when given (None keeps them).
    """

    record_id: int
    now_ms: int
    state: str = "pending"
    sent: bool = False
    last_error: str | None = None
    result: Mapping[str, Any] | None = field(default=None)


@dataclass(frozen=True, slots=True)
class ListOperatorTransfers(Op[tuple[list[OperatorTransferRecord], int]]):
    """Up to ``limit`` records with id > ``after_id``, oldest first, and the total matching
    count (ignoring ``after_id`` and ``limit``)."""

    protocol: str | None = None
    counterparty: str | None = None
    states: tuple[str, ...] | None = None
    user_id: str | None = None
    after_id: int = 0
    limit: int = 100

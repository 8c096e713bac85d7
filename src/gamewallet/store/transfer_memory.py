"""The operator transfer records (:mod:`gamewallet.store.transfer_ops`) on the in-memory store.

:class:`MemoryTransfers` keeps the ``operator_transfers`` table as a dict and changes it only
through the owning :class:`~gamewallet.store.memory.MemoryStore`'s journalled ``_put``, so a use
case that raises leaves it as it was. It mirrors the SQL of :mod:`gamewallet.store.transfer_sql`:
the same unique key, ids from 1, the same compare-and-set on ``pending``, results kept as JSON
text so that no caller shares a mutable dict with the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from gamewallet.store import transfer_ops as t

if TYPE_CHECKING:
    from gamewallet.store.memory import MemoryStore

_TABLE = "operator_transfers"


class MemoryTransfers:
    """The operator transfer table of one memory store, and the handlers that answer it."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        # id -> (record without result, result as JSON text or None)
        self.rows: dict[int, tuple[t.OperatorTransferRecord, str | None]] = {}
        self.keys: dict[tuple[str, str, str], int] = {}

    def handlers(self) -> dict[type[Any], Callable[[Any], Any]]:
        """The executor table entries for every transfer record request."""
        return {
            t.InsertOperatorTransfer: self.insert,
            t.GetOperatorTransfer: self.get,
            t.UpdateOperatorTransfer: self.update,
            t.ListOperatorTransfers: self.page,
        }

    def _record(self, record_id: int) -> t.OperatorTransferRecord:
        row, result = self.rows[record_id]
        return replace(row, result=json.loads(result) if result is not None else None)

    def insert(self, op: t.InsertOperatorTransfer) -> t.OperatorTransferRecord | None:
        assert op.kind in t.TRANSFER_KINDS, f"unknown transfer kind {op.kind!r}"
        key = (op.protocol, op.counterparty, op.transfer_id)
        if key in self.keys:
            return None
        record_id = self.store._new_id(_TABLE)
        row = t.OperatorTransferRecord(
            id=record_id,
            protocol=op.protocol,
            counterparty=op.counterparty,
            transfer_id=op.transfer_id,
            user_id=op.user_id,
            kind=op.kind,
            amount_minor=op.amount_minor,
            free_minor=op.free_minor,
            remark=op.remark,
            state="pending",
            attempts=0,
            last_error=None,
            result=None,
            created_at_ms=op.now_ms,
            updated_at_ms=op.now_ms,
        )
        self.store._put(self.rows, record_id, (row, None))
        self.store._put(self.keys, key, record_id)
        return self._record(record_id)

    def get(self, op: t.GetOperatorTransfer) -> t.OperatorTransferRecord | None:
        if op.record_id is not None:
            return self._record(op.record_id) if op.record_id in self.rows else None
        assert op.protocol, "a record by id or by its key"
        assert op.counterparty
        assert op.transfer_id
        record_id = self.keys.get((op.protocol, op.counterparty, op.transfer_id))
        return self._record(record_id) if record_id is not None else None

    def update(self, op: t.UpdateOperatorTransfer) -> t.OperatorTransferRecord | None:
        assert op.state in t.TRANSFER_STATES, f"unknown transfer state {op.state!r}"
        current = self.rows.get(op.record_id)
        if current is None or current[0].state != "pending":
            return None
        row, result = current
        row = replace(
            row,
            state=op.state,
            attempts=row.attempts + (1 if op.sent else 0),
            last_sent_at_ms=op.now_ms if op.sent else row.last_sent_at_ms,
            last_error=op.last_error if op.last_error is not None else row.last_error,
            updated_at_ms=op.now_ms,
        )
        if op.result is not None:
            result = json.dumps(dict(op.result), separators=(",", ":"), sort_keys=True)
        self.store._put(self.rows, op.record_id, (row, result))
        return self._record(op.record_id)

    def page(self, op: t.ListOperatorTransfers) -> tuple[list[t.OperatorTransferRecord], int]:
        assert op.limit >= 0
        assert op.after_id >= 0

        def matches(row: t.OperatorTransferRecord) -> bool:
            return (
                (op.protocol is None or row.protocol == op.protocol)
                and (op.counterparty is None or row.counterparty == op.counterparty)
                and (op.user_id is None or row.user_id == op.user_id)
                and (op.states is None or row.state in op.states)
            )

        matching = sorted(rid for rid, (row, _) in self.rows.items() if matches(row))
        page = [rid for rid in matching if rid > op.after_id][: op.limit]
        return [self._record(rid) for rid in page], len(matching)

"""The back-office requests (:mod:`gamewallet.store.admin_ops`) on the in-memory store.

:class:`MemoryAdmin` keeps the back-office tables as dicts and changes them only through the
owning :class:`~gamewallet.store.memory.MemoryStore`'s journalled ``_put`` / ``_drop``, so a
use case that raises leaves them as they were, like the SQL stores' transactions. The
aggregates read the store's ledger tables directly and mirror the SQL of
:mod:`gamewallet.store.admin_sql` (same grouping, same order, same unique keys).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from gamewallet.core.states import OpState
from gamewallet.store import admin_ops as a
from gamewallet.store.records import OperationRecord

if TYPE_CHECKING:
    from gamewallet.store.memory import MemoryStore


def _dump(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _page(rows: list[Any], offset: int, limit: int) -> tuple[list[Any], int]:
    assert offset >= 0, "paging needs offset >= 0"
    assert limit >= 0, "paging needs limit >= 0"
    return rows[offset : offset + limit], len(rows)


class MemoryAdmin:
    """The back-office tables of one memory store, and the handlers that answer them."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.users: dict[int, a.AdminUserRecord] = {}
        self.tokens: dict[int, a.AdminTokenRecord] = {}
        self.sessions: dict[str, a.AdminSessionRecord] = {}
        # Details are kept as JSON text, so no caller shares a mutable dict with the store.
        self.events: dict[int, tuple[a.AdminEventRecord, str]] = {}

    def handlers(self) -> dict[type[Any], Callable[[Any], Any]]:
        """The executor table entries for every back-office request."""
        return {
            a.InsertAdminUser: self.insert_user,
            a.GetAdminUser: self.get_user,
            a.ListAdminUsers: lambda op: sorted(self.users.values(), key=lambda u: u.id),
            a.UpdateAdminUser: self.update_user,
            a.InsertAdminToken: self.insert_token,
            a.GetAdminToken: self.get_token,
            a.ListAdminTokens: lambda op: sorted(self.tokens.values(), key=lambda t: t.id),
            a.UpdateAdminToken: self.update_token,
            a.InsertAdminSession: self.insert_session,
            a.GetAdminSession: lambda op: self.sessions.get(op.session_hash),
            a.DeleteAdminSessions: self.delete_sessions,
            a.InsertAdminEvent: self.insert_event,
            a.ListAdminEvents: self.list_events,
            a.BalanceTotals: self.balance_totals,
            a.CountOperations: self.count_operations,
            a.PlayerFlows: self.player_flows,
            a.OpenOperationTotals: self.open_totals,
            a.ListTombstones: self.list_tombstones,
        }

    # The owning store's journal and id sequences (private to it, shared on purpose).
    def _put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        self.store._put(table, key, value)

    def _new_id(self, table: str) -> int:
        return self.store._new_id(table)

    # --- staff users ---------------------------------------------------------------------

    def insert_user(self, op: a.InsertAdminUser) -> a.AdminUserRecord | None:
        assert op.role in a.ROLES, "admin_users_role_check violated"
        if any(u.name == op.name for u in self.users.values()):
            return None
        user = a.AdminUserRecord(
            self._new_id("admin_users"), op.name, op.role, op.password_hash, op.now_ms
        )
        self._put(self.users, user.id, user)
        return user

    def get_user(self, op: a.GetAdminUser) -> a.AdminUserRecord | None:
        if op.user_id is not None:
            return self.users.get(op.user_id)
        assert op.name is not None, "GetAdminUser needs an id or a name"
        return next((u for u in self.users.values() if u.name == op.name), None)

    def update_user(self, op: a.UpdateAdminUser) -> a.AdminUserRecord | None:
        assert set(op.changes) <= a.ADMIN_USER_FIELDS, "unknown admin user field"
        assert op.changes.get("role", "viewer") in a.ROLES, "admin_users_role_check violated"
        user = self.users.get(op.user_id)
        if user is None:
            return None
        updated = replace(user, **op.changes)
        self._put(self.users, user.id, updated)
        return updated

    # --- API tokens ----------------------------------------------------------------------

    def insert_token(self, op: a.InsertAdminToken) -> a.AdminTokenRecord | None:
        assert op.role in a.ROLES, "admin_tokens_role_check violated"
        if any(t.name == op.name or t.token_hash == op.token_hash for t in self.tokens.values()):
            return None
        token = a.AdminTokenRecord(
            self._new_id("admin_tokens"),
            op.name,
            op.role,
            op.token_hash,
            op.now_ms,
            op.created_by,
        )
        self._put(self.tokens, token.id, token)
        return token

    def get_token(self, op: a.GetAdminToken) -> a.AdminTokenRecord | None:
        if op.token_hash is not None:
            found = (t for t in self.tokens.values() if t.token_hash == op.token_hash)
        else:
            assert op.name is not None, "GetAdminToken needs a hash or a name"
            found = (t for t in self.tokens.values() if t.name == op.name)
        return next(found, None)

    def update_token(self, op: a.UpdateAdminToken) -> None:
        assert set(op.changes) <= a.ADMIN_TOKEN_FIELDS, "unknown admin token field"
        token = self.tokens.get(op.token_id)
        if token is not None:
            self._put(self.tokens, token.id, replace(token, **op.changes))

    # --- web sessions --------------------------------------------------------------------

    def insert_session(self, op: a.InsertAdminSession) -> None:
        s = op.session
        assert s.session_hash not in self.sessions, "admin_sessions_pkey violated"
        assert s.user_id in self.users, "admin_sessions_user_id_fkey violated"
        self._put(self.sessions, s.session_hash, s)

    def delete_sessions(self, op: a.DeleteAdminSessions) -> int:
        given = [op.session_hash, op.user_id, op.expired_before_ms]
        assert sum(v is not None for v in given) == 1, "DeleteAdminSessions takes one criterion"
        if op.session_hash is not None:
            doomed = [op.session_hash] if op.session_hash in self.sessions else []
        elif op.user_id is not None:
            doomed = [k for k, s in self.sessions.items() if s.user_id == op.user_id]
        else:
            expired = sorted(
                (s.expires_at_ms, k)
                for k, s in self.sessions.items()
                if s.expires_at_ms < (op.expired_before_ms or 0)
            )
            doomed = [k for _, k in expired[: max(op.limit, 0)]]
        for key in doomed:
            self.store._drop(self.sessions, key)
        return len(doomed)

    # --- the trail of staff actions ------------------------------------------------------

    def insert_event(self, op: a.InsertAdminEvent) -> int:
        event_id = self._new_id("admin_events")
        text = _dump(op.detail)
        record = a.AdminEventRecord(event_id, op.now_ms, op.actor, op.action, op.target, {})
        self._put(self.events, event_id, (record, text))
        return event_id

    def list_events(self, op: a.ListAdminEvents) -> tuple[list[a.AdminEventRecord], int]:
        rows = [
            replace(record, detail=json.loads(text))
            for _, (record, text) in sorted(self.events.items(), reverse=True)
            if (op.actor is None or record.actor == op.actor)
            and (op.action is None or record.action == op.action)
        ]
        return _page(rows, op.offset, op.limit)

    # --- read-only aggregates ------------------------------------------------------------

    def balance_totals(self, op: a.BalanceTotals) -> list[a.BalanceTotal]:
        sums: dict[tuple[str, int | None, str, str], list[int]] = defaultdict(lambda: [0] * 4)
        for row in self.store._accounts.values():
            client_id: int | None
            if row.owner_kind == "player":
                client_id = self.store._players[row.owner_id].client_id
            elif row.owner_kind == "client":
                client_id = row.owner_id
            else:
                client_id = None
            total = sums[(row.owner_kind, client_id, row.currency, row.bucket)]
            total[0] += row.posted_minor
            total[1] += row.held_minor
            total[2] += row.pending_minor
            total[3] += 1
        ordered = sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0, *kv[0][2:]))
        return [a.BalanceTotal(*key, *values) for key, values in ordered]

    def _operations_in(self, client_ids: tuple[int, ...], since: int, until: int, ns: str) -> Any:
        wanted = set(client_ids)
        return (
            row
            for row in self.store._operations.values()
            if row.client_id in wanted and since <= row.created_at_ms < until and row.ns == ns
        )

    def count_operations(self, op: a.CountOperations) -> list[a.OperationCount]:
        assert op.bucket_ms > 0
        counts: dict[tuple[int, int], int] = defaultdict(int)
        for row in self._operations_in(op.client_ids, op.since_ms, op.until_ms, op.ns):
            counts[(row.created_at_ms // op.bucket_ms * op.bucket_ms, row.client_id)] += 1
        return [a.OperationCount(start, client, n) for (start, client), n in sorted(counts.items())]

    def player_flows(self, op: a.PlayerFlows) -> list[a.PlayerFlow]:
        assert op.bucket_ms > 0
        operations = {
            row.id: row
            for row in self._operations_in(op.client_ids, op.since_ms, op.until_ms, op.ns)
        }
        flows: dict[tuple[int, int, str], list[int]] = defaultdict(lambda: [0, 0])
        for posting in self.store._postings.values():
            operation = operations.get(posting.operation_id)
            account = self.store._accounts[posting.account_id]
            if operation is None or account.owner_kind != "player" or account.bucket != "cash":
                continue
            start = operation.created_at_ms // op.bucket_ms * op.bucket_ms
            flow = flows[(start, operation.client_id, posting.currency)]
            flow[0 if posting.amount_minor < 0 else 1] += abs(posting.amount_minor)
        return [a.PlayerFlow(*key, *values) for key, values in sorted(flows.items())]

    def open_totals(self, op: a.OpenOperationTotals) -> list[a.OpenTotal]:
        groups: dict[tuple[int, str, str, str], list[int]] = {}
        for row in self.store._operations.values():
            if row.state not in (OpState.HELD, OpState.PENDING):
                continue
            key = (row.client_id, row.currency, row.state.value, row.kind)
            group = groups.setdefault(key, [0, 0, 0, row.created_at_ms])
            group[0] += 1
            group[1] += row.amount_minor
            group[2] += row.free_minor
            group[3] = min(group[3], row.created_at_ms)
        return [a.OpenTotal(*key, *values) for key, values in sorted(groups.items())]

    def list_tombstones(self, op: a.ListTombstones) -> tuple[list[OperationRecord], int]:
        rows = sorted(
            (
                row
                for row in self.store._operations.values()
                if row.state is OpState.ROLLED_BACK
                and row.amount_minor == 0
                and row.free_minor == 0
                and (op.client_id is None or row.client_id == op.client_id)
            ),
            key=lambda row: (row.created_at_ms, row.id),
            reverse=True,
        )
        page, total = _page(rows, op.offset, op.limit)
        return [self.store._operation_record(row) for row in page], total

"""SQLite fast path: a seamless two-phase call as one plain function on the writer thread.

The generic path drives ``service.seamless._wallet_call`` as a generator: every store request
it yields (GetSession, GetPlayer, GetIdempotency, InsertOperation, Apply, …) is dispatched,
executed and mapped to a frozen record. :func:`seamless_call` does the same work straight over
``sqlite3`` from the :class:`~gamewallet.store.fastpath.SeamlessRequest` a
:class:`~gamewallet.store.fastpath.FastOffer` carries: one SELECT reads the session, the player
with both accounts, the stored answer, the operation and the client's account shard together,
then only the writes follow. It mirrors the Python use case branch by branch (and, through it,
``gw_seamless_call_v1`` of migration 0005): the same precedence of refusals with the same
details, the state table of :mod:`gamewallet.core.states` itself, the shards and credit limit of
``service.common.move``, the same rows in the same insertion order (so even row ids match) and
the same stored bytes, filled into the request's template exactly as the PostgreSQL function
fills it.

Invariants it relies on, kept by :mod:`gamewallet.store.sqlite`:

- it runs on the writer thread inside the batch transaction and its own SAVEPOINT, so reading
  before writing needs no lock (there is one writer) and a refusal (``WalletError``) or a
  failure is undone by ``ROLLBACK TO`` exactly as for the generic path;
- :data:`DECLINE` means "not handled": the caller rolls back to the savepoint and drives the
  generic use case, so declining can never leave a trace.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any, Final

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.money import format_minor
from gamewallet.core.states import TABLE, Call, Effect, OpState
from gamewallet.store.fastpath import SeamlessRequest


class _Decline:
    """The type of :data:`DECLINE`."""

    def __repr__(self) -> str:
        return "DECLINE"


#: Returned when the fast path does not handle a request: run the generic use case instead.
DECLINE: Final = _Decline()

#: core.states.TABLE keyed by the stored strings: (state or None, call) -> (effect, next, error).
_CELLS: Final[dict[tuple[str | None, str], tuple[Effect | None, str | None, ErrorCode | None]]] = {
    (state.value if state is not None else None, call.value): (
        cell.effect,
        cell.next_state.value if cell.next_state is not None else None,
        cell.error,
    )
    for (state, call), cell in TABLE.items()
}
_OPENS_AS: Final = {"withdraw": OpState.HELD.value, "deposit": OpState.PENDING.value}
_OPEN, _CONFIRM, _ROLLBACK = Call.OPEN.value, Call.CONFIRM.value, Call.ROLLBACK.value

# Everything a call reads, in one statement (``service.seamless``: _session_player,
# _stored_answer, GetOperation, and move's client shard). LEFT JOINs keep the session row when
# the rest is missing; the player counts as found only with both of its accounts, as the
# generic GetPlayer's inner joins require.
_READ = """
SELECT s.client_id, s.kind, s.expires_at_ms,
       p.id, p.currency, p.blocked, f.id,
       c.id, c.posted_minor, c.held_minor, c.pending_minor,
       i.fingerprint, i.response, i.created_at_ms,
       o.id, o.kind, o.player_id, o.amount_minor, o.currency, o.state, o.detail,
       k.id
FROM sessions s
LEFT JOIN players p ON p.id = s.player_id
LEFT JOIN accounts c ON c.owner_kind = 'player' AND c.owner_id = p.id
     AND c.currency = p.currency AND c.bucket = 'cash' AND c.shard = 0
LEFT JOIN accounts f ON f.owner_kind = 'player' AND f.owner_id = p.id
     AND f.currency = p.currency AND f.bucket = 'free' AND f.shard = 0
LEFT JOIN idempotency i ON i.client_id = ?1 AND i.scope = ?2 AND i."key" = ?3
LEFT JOIN operations o ON o.client_id = ?1 AND o.ns = 'wire' AND o.ext_id = ?3
LEFT JOIN accounts k ON k.owner_kind = 'client' AND k.owner_id = ?1
     AND k.currency = p.currency AND k.bucket = 'cash' AND k.shard = p.id % ?4
WHERE s.token = ?5
"""
_INSERT_OPERATION = (
    "INSERT INTO operations (client_id, ns, ext_id, kind, player_id, currency, amount_minor,"
    " free_minor, state, created_at_ms, updated_at_ms, detail)"
    " VALUES (?,'wire',?,?,?,?,?,0,?,?,?,?) RETURNING id"
)
_HOLD = "UPDATE accounts SET held_minor = held_minor + ? WHERE id = ?"
_PENDING = "UPDATE accounts SET pending_minor = pending_minor + ? WHERE id = ?"
_POST_PLAYER = (
    "UPDATE accounts SET posted_minor = posted_minor + ?, held_minor = held_minor - ?,"
    " pending_minor = pending_minor - ? WHERE id = ?"
)
_POST_CLIENT = "UPDATE accounts SET posted_minor = posted_minor - ? WHERE id = ?"
_POSTINGS = (
    "INSERT INTO postings (operation_id, account_id, currency, amount_minor, created_at_ms)"
    " VALUES (?,?,?,?,?), (?,?,?,?,?)"
)
_UPDATE_OPERATION = "UPDATE operations SET state = ?, updated_at_ms = ?, detail = ? WHERE id = ?"
_SAVE_ANSWER = (
    "INSERT INTO idempotency (client_id, scope, key, fingerprint, response, created_at_ms)"
    " VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING"
)
# The client's cash shards, as the generic GetOwnerAccounts reads and creates them.
_SHARDS = (
    "SELECT id, posted_minor FROM accounts WHERE owner_kind = 'client' AND owner_id = ?"
    " AND currency = ? AND bucket = 'cash' AND shard < ? ORDER BY shard"
)
_SHARD = (
    "SELECT id FROM accounts WHERE owner_kind = 'client' AND owner_id = ? AND currency = ?"
    " AND bucket = 'cash' AND shard = ?"
)
_CREATE_SHARD = (
    "INSERT INTO accounts (owner_kind, owner_id, currency, bucket, shard, no_overdraft)"
    " VALUES ('client', ?, ?, 'cash', ?, 0) ON CONFLICT DO NOTHING"
)


def _json(value: dict[str, Any]) -> str:
    """A JSON column's text, byte for byte what ``store.rows.to_json`` writes."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class SqliteFastPath:
    """The fast-path calls on the writer's connection (one cursor, rows as plain tuples)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.cur = conn.cursor()
        self.cur.row_factory = None

    def seamless_call(self, r: SeamlessRequest) -> bytes | _Decline:
        """One seamless two-phase call (``service.seamless._wallet_call``): the response bytes,
        a ``WalletError``, or :data:`DECLINE`."""
        if r.amount_minor is not None and r.amount_minor < 0:
            return DECLINE  # never sent by the protocol; the generic path decides what it is
        cur = self.cur
        row = cur.execute(_READ, (r.client_id, r.endpoint, r.ext_id, r.shards, r.token)).fetchone()
        # _session_player: 102 unless the token is a session of this client, then the player.
        if row is None or row[0] != r.client_id or row[1] != "session":
            raise WalletError(ErrorCode.UNKNOWN_TOKEN)
        (_, _, expires, player, currency, blocked, free_id, cash, posted, held, pending) = row[:11]
        if player is None or cash is None or free_id is None:
            raise WalletError(ErrorCode.PLAYER_NOT_FOUND)
        fp = hashlib.sha256(f"{r.fp_prefix}{player}{r.fp_suffix}".encode()).hexdigest()
        # _stored_answer: an expired record no longer answers (it waits for the purge).
        stored = row[11] is not None and r.now_ms - row[13] < r.retention_ms
        if stored and row[11] == fp:
            return bytes(row[12])
        opens_withdraw = r.call == _OPEN and r.kind == "withdraw"
        if opens_withdraw and expires <= r.now_ms:
            raise WalletError(ErrorCode.SESSION_EXPIRED)
        if opens_withdraw and blocked:
            raise WalletError(ErrorCode.PLAYER_BLOCKED)
        if r.currency is not None and r.currency != currency:
            raise WalletError(ErrorCode.CURRENCY_MISMATCH)
        if stored:
            raise WalletError(ErrorCode.ID_REUSED, "the same id was answered for other content")
        after = self._apply(r, row, player, currency, cash, posted - held, posted, pending)
        text = format_minor(after).encode()
        cur_text = currency.encode()
        first, second = (text, cur_text) if r.balance_first else (cur_text, text)
        parts = r.body_parts
        body = parts[0] + first + parts[1] + second + parts[2]
        cur.execute(_SAVE_ANSWER, (r.client_id, r.endpoint, r.ext_id, fp, body, r.now_ms))
        return body

    def _apply(
        self,
        r: SeamlessRequest,
        row: tuple[Any, ...],
        player: int,
        currency: str,
        cash: int,
        available: int,
        posted: int,
        pending: int,
    ) -> int:
        """``service.seamless._apply``: claim or find the operation, follow its table cell;
        the available balance after."""
        cur = self.cur
        op_id, op_kind, op_player, op_amount, op_currency, op_state, op_detail = row[14:21]
        if op_id is None and r.call == _OPEN:
            # The (None, OPEN) cell: claim the id, then _open (111, then 106).
            assert r.amount_minor is not None
            amount = r.amount_minor
            cur.execute(
                _INSERT_OPERATION,
                (r.client_id, r.ext_id, r.kind, player, currency, amount, _OPENS_AS[r.kind],
                 r.now_ms, r.now_ms, _json(dict(r.note))),
            )  # fmt: skip
            cur.fetchone()
            if amount > r.max_amount_minor:
                raise WalletError(ErrorCode.LIMIT_EXCEEDED)
            if r.kind == "deposit":
                if posted + pending + amount > r.max_balance_minor:
                    raise WalletError(ErrorCode.BALANCE_LIMIT_EXCEEDED)
                cur.execute(_PENDING, (amount, cash))
                return available
            if available < amount:
                raise WalletError(ErrorCode.INSUFFICIENT_FUNDS)
            cur.execute(_HOLD, (amount, cash))
            return available - amount
        if op_id is None and r.call == _ROLLBACK:
            # The (None, ROLLBACK) cell: a tombstone (one writer: nobody claimed it meanwhile).
            cur.execute(
                _INSERT_OPERATION,
                (r.client_id, r.ext_id, r.kind, player, currency, 0, OpState.ROLLED_BACK.value,
                 r.now_ms, r.now_ms, _json({"tombstone": True, **r.note})),
            )  # fmt: skip
            cur.fetchone()
            return available
        detail: dict[str, Any] | None = None
        if op_id is not None:
            # _check_same
            if op_kind != r.kind or op_player != player:
                raise WalletError(ErrorCode.ID_REUSED, "the id belongs to another operation")
            if r.amount_minor is not None:
                detail = json.loads(op_detail)
                assert isinstance(detail, dict)
                if not detail.get("tombstone") and (
                    op_amount != r.amount_minor or op_currency != r.currency
                ):
                    raise WalletError(
                        ErrorCode.ID_REUSED, "amount or currency differs from the original"
                    )
        effect, next_state, error = _CELLS[(op_state, r.call)]
        if error is not None:
            raise WalletError(error)
        assert op_id is not None, "an unknown id either opens, is refused or is tombstoned"
        assert next_state is not None
        if effect is Effect.REPLAY:
            return available
        if effect is Effect.POST:
            gets = -op_amount if r.kind == "withdraw" else op_amount
            self._post(r, row, player, currency, cash, op_id, gets, op_amount)
            after = available if r.kind == "withdraw" else available + op_amount
        else:
            assert effect is Effect.VOID
            if r.kind == "withdraw":
                cur.execute(_HOLD, (-op_amount, cash))
                after = available + op_amount  # the held amount is spendable again
            else:
                cur.execute(_PENDING, (-op_amount, cash))
                after = available  # a pending credit was never spendable
        # UpdateOperation: the note merged into the detail (the generic store's merge).
        if r.note or op_detail != "{}":
            if detail is None:
                detail = json.loads(op_detail)
                assert isinstance(detail, dict)
            op_detail = _json({**detail, **r.note})
        cur.execute(_UPDATE_OPERATION, (next_state, r.now_ms, op_detail, op_id))
        return after

    def _post(
        self,
        r: SeamlessRequest,
        row: tuple[Any, ...],
        player: int,
        currency: str,
        cash: int,
        op_id: int,
        gets: int,
        amount: int,
    ) -> None:
        """``service.common.move`` for one cash posting that settles a hold or pending credit."""
        if amount == 0:
            return  # move() skips a zero amount and Apply then changes nothing
        cur = self.cur
        shard = player % r.shards
        if r.credit_limit_minor is not None and gets > 0:
            # _client_account with a credit limit: every shard (created if missing), summed.
            rows = cur.execute(_SHARDS, (r.client_id, currency, r.shards)).fetchall()
            if len(rows) < r.shards:
                cur.executemany(
                    _CREATE_SHARD, [(r.client_id, currency, s) for s in range(r.shards)]
                )
                rows = cur.execute(_SHARDS, (r.client_id, currency, r.shards)).fetchall()
            if sum(posted for _, posted in rows) - gets < -r.credit_limit_minor:
                raise WalletError(ErrorCode.CREDIT_LIMIT_EXCEEDED)
            client_account = rows[shard][0]
        else:
            client_account = row[21]
            if client_account is None:
                cur.execute(_CREATE_SHARD, (r.client_id, currency, shard))
                found = cur.execute(_SHARD, (r.client_id, currency, shard)).fetchone()
                assert found is not None
                client_account = found[0]
        released_hold = amount if r.kind == "withdraw" else 0
        released_pending = amount if r.kind == "deposit" else 0
        cur.execute(_POST_PLAYER, (gets, released_hold, released_pending, cash))
        cur.execute(_POST_CLIENT, (gets, client_account))
        cur.execute(
            _POSTINGS,
            (
                op_id,
                cash,
                currency,
                gets,
                r.now_ms,
                op_id,
                client_account,
                currency,
                -gets,
                r.now_ms,
            ),
        )

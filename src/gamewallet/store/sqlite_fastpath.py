"""SQLite fast path: each hot wallet call as one plain function on the writer thread.

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
fills it. HRG deposit/withdraw (:class:`~gamewallet.store.fastpath.HrgRequest`, mirroring
``service.hrg``) and JDB action 19 (:class:`~gamewallet.store.fastpath.JdbRequest`, mirroring
``service.jdb._transfer``; its result is the data the offer's ``finish`` expects) are done the
same way.

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
from collections.abc import Callable
from typing import Any, Final

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.money import format_minor
from gamewallet.core.states import TABLE, Call, Effect, OpState
from gamewallet.store.fastpath import HrgRequest, JdbRequest, SeamlessRequest


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
_POSTING = (
    "INSERT INTO postings (operation_id, account_id, currency, amount_minor, created_at_ms)"
    " VALUES (?,?,?,?,?)"
)
_POSTINGS = (
    "INSERT INTO postings (operation_id, account_id, currency, amount_minor, created_at_ms)"
    " VALUES (?,?,?,?,?), (?,?,?,?,?)"
)
_UPDATE_OPERATION = "UPDATE operations SET state = ?, updated_at_ms = ?, detail = ? WHERE id = ?"
_SAVE_ANSWER = (
    "INSERT INTO idempotency (client_id, scope, key, fingerprint, response, created_at_ms)"
    " VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING"
)


# HRG (``service.hrg``): the player by its user id with both accounts, the stored answer and
# the operation of the transaction code.
_HRG_READ = """
SELECT p.id, p.currency, c.id, c.posted_minor, c.held_minor, f.id, f.posted_minor, f.held_minor,
       i.fingerprint, i.response,
       o.id, o.kind, o.amount_minor, o.free_minor, o.currency, o.detail
FROM players p
JOIN accounts c ON c.owner_kind = 'player' AND c.owner_id = p.id
     AND c.currency = p.currency AND c.bucket = 'cash' AND c.shard = 0
JOIN accounts f ON f.owner_kind = 'player' AND f.owner_id = p.id
     AND f.currency = p.currency AND f.bucket = 'free' AND f.shard = 0
LEFT JOIN idempotency i ON i.client_id = ?1 AND i.scope = 'hrg:transfer' AND i."key" = ?2
LEFT JOIN operations o ON o.client_id = ?1 AND o.ns = 'wire' AND o.ext_id = ?2
WHERE p.client_id = ?1 AND p.external_id = ?3
"""
_HRG_INSERT = (
    "INSERT INTO operations (client_id, ns, ext_id, kind, player_id, currency, amount_minor,"
    " free_minor, state, created_at_ms, updated_at_ms, detail)"
    " VALUES (?,'wire',?,?,?,?,?,?,'completed',?,?,?) RETURNING id"
)
_POSTED = "UPDATE accounts SET posted_minor = posted_minor + ? WHERE id = ?"
_HRG_SAVE = (
    "INSERT INTO idempotency (client_id, scope, key, fingerprint, response, created_at_ms)"
    " VALUES (?,'hrg:transfer',?,?,?,?) ON CONFLICT DO NOTHING"
)
# A client's account shards of one bucket, as the generic GetOwnerAccounts reads and creates
# them (HRG moves free credit too).
_BUCKET_SHARDS = (
    "SELECT id, posted_minor FROM accounts WHERE owner_kind = 'client' AND owner_id = ?"
    " AND currency = ? AND bucket = ? AND shard < ? ORDER BY shard"
)
_BUCKET_TOTAL = (
    "SELECT count(*), coalesce(sum(posted_minor), 0) FROM accounts WHERE owner_kind = 'client'"
    " AND owner_id = ? AND currency = ? AND bucket = ? AND shard < ?"
)
_BUCKET_SHARD = (
    "SELECT id FROM accounts WHERE owner_kind = 'client' AND owner_id = ? AND currency = ?"
    " AND bucket = ? AND shard = ?"
)
_CREATE_BUCKET_SHARD = (
    "INSERT INTO accounts (owner_kind, owner_id, currency, bucket, shard, no_overdraft)"
    " VALUES ('client', ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING"
)


# JDB action 19 (``service.jdb._transfer``): the operation of the serialNo, the player by uid.
_JDB_READ = """
SELECT p.id, p.currency, p.blocked, p.locked, p.closed, p.game_type, p.game_left_at_ms,
       c.id, c.posted_minor, c.held_minor,
       (SELECT 1 FROM operations o WHERE o.client_id = ?1 AND o.ns = 'wire' AND o.ext_id = ?2),
       f.id
FROM (SELECT 1) AS one
LEFT JOIN players p ON p.client_id = ?1 AND p.external_id = ?3
LEFT JOIN accounts c ON c.owner_kind = 'player' AND c.owner_id = p.id
     AND c.currency = p.currency AND c.bucket = 'cash' AND c.shard = 0
LEFT JOIN accounts f ON f.owner_kind = 'player' AND f.owner_id = p.id
     AND f.currency = p.currency AND f.bucket = 'free' AND f.shard = 0
"""


def _money1(minor: int) -> str:
    """An HRG amount (``core.money.format_minor`` with one fraction digit at least)."""
    return format_minor(minor, min_fraction_digits=1)


def _hrg_body(r: HrgRequest, total: int, cash_after: int, free_after: int, currency: str) -> bytes:
    """The answer from the request's template (as ``gw_hrg_render_v1`` fills it)."""
    texts = {1: _money1(total), 2: _money1(cash_after), 3: _money1(free_after), 4: currency}
    parts = r.body_parts
    out = [parts[0]]
    for index, hole in enumerate(r.hole_order):
        out.append(texts[hole].encode())
        out.append(parts[index + 1])
    return b"".join(out)


#: The request types handled here, by the name of their method.
_CALLS: Final[dict[type[Any], str]] = {
    SeamlessRequest: "seamless_call",
    HrgRequest: "hrg_transfer",
    JdbRequest: "jdb_transfer",
}


def _json(value: dict[str, Any]) -> str:
    """A JSON column's text, byte for byte what ``store.rows.to_json`` writes."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class SqliteFastPath:
    """The fast-path calls on the writer's connection (one cursor, rows as plain tuples)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.cur = conn.cursor()
        self.cur.row_factory = None

    def call_for(self, request: object) -> Callable[[Any], object] | None:
        """The function that runs ``request`` here, or None (the generic path runs it)."""
        name = _CALLS.get(type(request))
        return None if name is None else getattr(self, name)

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
        client_account = row[21]  # the player's shard, read with everything else
        if client_account is None or (r.credit_limit_minor is not None and gets > 0):
            client_account = self._client_account(r, player, currency, "cash", gets)
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

    # --- HRG deposit / withdraw -----------------------------------------------------------

    def hrg_transfer(self, r: HrgRequest) -> bytes | _Decline:
        """One HRG ``deposit`` / ``withdraw`` (``service.hrg._deposit`` / ``_withdraw``): the
        response bytes, a ``WalletError``, or :data:`DECLINE`."""
        if r.cash_minor < 0 or r.free_minor < 0 or r.kind not in ("deposit", "withdraw"):
            return DECLINE  # never sent by the protocol; the generic path decides
        cur = self.cur
        row = cur.execute(_HRG_READ, (r.client_id, r.transaction_code, r.user_id)).fetchone()
        if row is None:  # get_player(lock=True)
            raise WalletError(ErrorCode.PLAYER_NOT_FOUND, f"no player {r.user_id}")
        player, currency, cash_id, c_posted, c_held, free_id, f_posted, f_held = row[:8]
        # _replay: the stored answer, else the operation itself (kept after the purge).
        if row[8] is not None:
            if row[8] != r.fingerprint:
                raise WalletError(ErrorCode.ID_REUSED)
            return bytes(row[9])
        if row[10] is not None:
            return self._hrg_replay(r, row)
        if r.kind == "withdraw":
            cash_available, free_available = c_posted - c_held, f_posted - f_held
            if r.all_buckets:
                cash, free = cash_available, free_available
            else:
                cash, free = r.cash_minor, r.free_minor
                if cash > r.max_amount_minor or free > r.max_amount_minor:
                    raise WalletError(ErrorCode.LIMIT_EXCEEDED)
                if cash > cash_available:
                    raise WalletError(ErrorCode.INSUFFICIENT_FUNDS)
                if free > free_available:
                    raise WalletError(ErrorCode.INSUFFICIENT_FREE_CREDIT)
            cash, free = -cash, -free
        else:
            cash, free = r.cash_minor, r.free_minor
            if cash > r.max_amount_minor or free > r.max_amount_minor:
                raise WalletError(ErrorCode.LIMIT_EXCEEDED)
            if c_posted + cash > r.max_balance_minor or f_posted + free > r.max_balance_minor:
                raise WalletError(ErrorCode.BALANCE_LIMIT_EXCEEDED)
        # _transfer: claim the code with the record the query endpoints read.
        detail = {
            "userId": r.user_id,
            "fingerprint": r.fingerprint,
            "preBalance": c_posted,
            "preFreeCredit": f_posted,
            "afterBalance": c_posted + cash,
            "afterFreeCredit": f_posted + free,
        }
        cur.execute(
            _HRG_INSERT,
            (r.client_id, r.transaction_code, r.kind, player, currency, abs(cash), abs(free),
             r.now_ms, r.now_ms, _json(detail)),
        )  # fmt: skip
        found = cur.fetchone()
        assert found is not None, "one writer: nobody claimed the code since the read"
        if cash or free:
            self._hrg_move(
                r, player, currency, found[0], ((cash_id, "cash", cash), (free_id, "free", free))
            )
        sign = -1 if r.kind == "withdraw" else 1
        body = _hrg_body(
            r, sign * (abs(cash) + abs(free)), c_posted + cash, f_posted + free, currency
        )
        cur.execute(_HRG_SAVE, (r.client_id, r.transaction_code, r.fingerprint, body, r.now_ms))
        return body

    def _hrg_replay(self, r: HrgRequest, row: tuple[Any, ...]) -> bytes | _Decline:
        """``service.hrg._replay_operation``: the same request rebuilds the same answer."""
        _, op_kind, op_amount, op_free, op_currency, op_detail = row[10:16]
        detail = json.loads(op_detail)
        assert isinstance(detail, dict)
        if detail.get("fingerprint") != r.fingerprint:
            raise WalletError(ErrorCode.ID_REUSED)
        if op_kind not in ("deposit", "withdraw"):
            return DECLINE  # not a transfer: the generic path reports it
        sign = -1 if op_kind == "withdraw" else 1
        return _hrg_body(
            r,
            sign * op_amount + sign * op_free,
            int(detail["afterBalance"]),
            int(detail["afterFreeCredit"]),
            op_currency,
        )

    def _hrg_move(
        self,
        r: HrgRequest,
        player: int,
        currency: str,
        op_id: int,
        legs: tuple[tuple[int, str, int], ...],
    ) -> None:
        """``service.common.move`` for HRG: cash then free credit, each against the client's
        shard of that bucket (the credit limit applies to cash); postings in move's order."""
        cur = self.cur
        moves: list[tuple[int, int, int]] = []  # (player account, client account, amount)
        for account, bucket, amount in legs:
            if amount != 0:
                client_account = self._client_account(r, player, currency, bucket, amount)
                moves.append((account, client_account, amount))
        postings: list[tuple[int, int, str, int, int]] = []
        for account, client_account, amount in moves:
            cur.execute(_POSTED, (amount, account))
            cur.execute(_POSTED, (-amount, client_account))
            postings.append((op_id, account, currency, amount, r.now_ms))
            postings.append((op_id, client_account, currency, -amount, r.now_ms))
        cur.executemany(_POSTING, postings)

    # --- JDB action 19 ----------------------------------------------------------------------

    def jdb_transfer(self, r: JdbRequest) -> dict[str, Any] | _Decline:
        """One JDB action 19 (``service.jdb._transfer``): the data the offer's ``finish``
        turns into its result (the PostgreSQL function's output columns), a ``WalletError``,
        or :data:`DECLINE`."""
        withdraw = r.all_cash_out or (r.amount_minor is not None and r.amount_minor < 0)
        if not withdraw and (r.amount_minor is None or r.amount_minor <= 0):
            return DECLINE  # the generic path asserts on it
        cur = self.cur
        # TryLockKey always succeeds with one writer: no other transaction can hold the key.
        row = cur.execute(_JDB_READ, (r.client_id, r.serial_no, r.uid)).fetchone()
        assert row is not None, "the query always answers one row"
        if row[10] is not None:
            raise WalletError(ErrorCode.ALREADY_COMPLETED)
        if row[0] is None or row[7] is None or row[11] is None:
            raise WalletError(ErrorCode.PLAYER_NOT_FOUND, f"no player {r.uid}")
        player, currency, blocked, locked, closed, game, left_at, cash, posted, held = row[:10]
        # _check_flags
        if closed:
            raise WalletError(ErrorCode.PLAYER_CLOSED)
        if locked:
            raise WalletError(ErrorCode.PLAYER_LOCKED)
        if blocked and withdraw:
            raise WalletError(ErrorCode.PLAYER_BLOCKED)
        before = posted - held
        if withdraw:
            # _check_can_withdraw; inside the longest cooldown only the generic path knows the
            # game's own one.
            if game is not None:
                raise WalletError(ErrorCode.PLAYER_IN_GAME)
            if left_at is not None and r.now_ms < left_at + r.max_cooldown_ms:
                return DECLINE
            if r.all_cash_out:
                if before == 0:
                    raise WalletError(ErrorCode.ZERO_BALANCE)
                signed = -before
            else:
                assert r.amount_minor is not None
                signed = r.amount_minor
                if -signed > before:
                    raise WalletError(ErrorCode.INSUFFICIENT_FUNDS)
        else:
            assert r.amount_minor is not None
            signed = r.amount_minor
            if signed >= r.limit_minor:
                raise WalletError(ErrorCode.LIMIT_EXCEEDED)
            if before + signed >= r.limit_minor:
                raise WalletError(ErrorCode.BALANCE_LIMIT_EXCEEDED)
        detail = _json(
            {
                "uid": r.uid,
                "signed_minor": signed,
                "before_minor": before,
                "after_minor": before + signed,
                "remark": r.remark,
                "all_cash_out": r.all_cash_out,
            }
        )
        kind = "withdraw" if signed < 0 else "deposit"
        cur.execute(
            _HRG_INSERT,
            (r.client_id, r.serial_no, kind, player, currency, abs(signed), 0, r.now_ms,
             r.now_ms, detail),
        )  # fmt: skip
        found = cur.fetchone()
        assert found is not None, "one writer: nobody claimed the serialNo since the read"
        op_id = found[0]
        self._jdb_move(r, player, currency, cash, op_id, signed)
        return {
            "o_op_id": op_id,
            "o_player": player,
            "o_currency": currency,
            "o_signed": signed,
            "o_before": before,
            "o_agent": self._client_balance(r.client_id, currency, r.shards),
            "o_op_detail": detail,
        }

    def _jdb_move(
        self, r: JdbRequest, player: int, currency: str, cash: int, op_id: int, signed: int
    ) -> None:
        """``service.common.move(cash_minor=signed)`` (never zero here)."""
        cur = self.cur
        client_account = self._client_account(r, player, currency, "cash", signed)
        cur.execute(_POSTED, (signed, cash))
        cur.execute(_POSTED, (-signed, client_account))
        cur.execute(
            _POSTINGS,
            (op_id, cash, currency, signed, r.now_ms, op_id, client_account, currency, -signed,
             r.now_ms),
        )  # fmt: skip

    def _client_balance(self, client_id: int, currency: str, shards: int) -> int:
        """``service.common.client_balance``: the sum of the client's cash shards, counted and
        summed by SQLite (16 rows less to build in Python on every JDB transfer); missing
        shards are created empty, as the generic GetOwnerAccounts does, and add nothing."""
        key = (client_id, currency, "cash")
        row = self.cur.execute(_BUCKET_TOTAL, (*key, shards)).fetchone()
        assert row is not None, "an aggregate always answers one row"
        count, total = row
        if count < shards:
            self._client_shards(key, shards)
        return int(total)

    # --- the client's account shards (``service.common._client_account``) ------------------

    def _client_shards(self, key: tuple[int, str, str], shards: int) -> list[tuple[int, int]]:
        """(id, posted) of every shard of a client's bucket, missing ones created empty in
        shard order, as the generic GetOwnerAccounts does."""
        cur = self.cur
        rows: list[tuple[int, int]] = cur.execute(_BUCKET_SHARDS, (*key, shards)).fetchall()
        if len(rows) < shards:
            cur.executemany(_CREATE_BUCKET_SHARD, [(*key, s) for s in range(shards)])
            rows = cur.execute(_BUCKET_SHARDS, (*key, shards)).fetchall()
        return rows

    def _client_account(
        self,
        r: SeamlessRequest | HrgRequest | JdbRequest,
        player: int,
        currency: str,
        bucket: str,
        player_gets: int,
    ) -> int:
        """The client shard row taking the other side of a player's posting: with a credit
        limit on a cash credit, every shard is summed first (CREDIT_LIMIT_EXCEEDED past the
        limit); else the player's shard, created on first use."""
        shard = player % r.shards
        key = (r.client_id, currency, bucket)
        if r.credit_limit_minor is not None and bucket == "cash" and player_gets > 0:
            rows = self._client_shards(key, r.shards)
            if sum(posted for _, posted in rows) - player_gets < -r.credit_limit_minor:
                raise WalletError(ErrorCode.CREDIT_LIMIT_EXCEEDED)
            return rows[shard][0]
        cur = self.cur
        found = cur.execute(_BUCKET_SHARD, (*key, shard)).fetchone()
        if found is None:
            cur.execute(_CREATE_BUCKET_SHARD, (*key, shard))
            found = cur.execute(_BUCKET_SHARD, (*key, shard)).fetchone()
            assert found is not None
        client_id: int = found[0]
        return client_id

"""The PostgreSQL store with its fast path: one round trip per wallet call, or less.

:class:`FastPostgresStore` is :class:`~gamewallet.store.postgres.PostgresStore` plus three
things.

1. A :class:`~gamewallet.store.fastpath.FastOffer` is answered by one call of the SQL function
   ``gw_seamless_call_v1``, ``gw_hrg_transfer_v1`` (migration 0005) or ``gw_jdb_transfer_v2``
   (migration 0008), sent outside an explicit transaction: the statement is its own
   transaction, so BEGIN and COMMIT cost no extra round trips. The function returns ``ok`` +
   the response bytes (or, for JDB, the data the offer's ``finish`` turns into the use case's
   result), ``error`` + a core error code (nothing changed), or ``generic`` (nothing changed;
   the generic use case then runs as usual). If a function is missing (a database not yet at
   0005, or for JDB at 0008) its calls take the generic path.
2. Group commit (``batch_max`` > 1, migration 0007, :mod:`gamewallet.store.pg_group`): calls
   that arrive while a statement of the same function is in flight wait for it, then go
   together through the function's batch form: one round trip, one transaction, one commit
   for all of them; each caller gets its row only after that commit. A lone call goes at once
   on the per-call function, as in 1.
3. The pool does not run asyncpg's reset query (``RESET ALL; UNLISTEN *; …``) on every release:
   gamewallet keeps no session state on its connections (no SET, LISTEN, session advisory lock
   or cursor outlives a use case), so that query was one wasted round trip per call.

Failures are translated exactly as the generic path does: driver errors become StoreError,
a violated CHECK constraint an AssertionError.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import asyncpg

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.store.fastpath import FastOffer, HrgRequest, JdbRequest, SeamlessRequest
from gamewallet.store.pg_group import BATCH_LIMIT, GroupCommit, Lane
from gamewallet.store.port import UseCase
from gamewallet.store.postgres import _DRIVER_ERRORS, PostgresStore, _store_error

T = TypeVar("T")

#: Name of the function this code speaks to; a new signature gets a new name.
FUNCTION = "gw_seamless_call_v1"
_CALL = """
SELECT o_status, o_code, o_detail, o_body FROM gw_seamless_call_v1(
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
    $21, $22)"""
_HRG_CALL = """
SELECT o_status, o_code, o_detail, o_body FROM gw_hrg_transfer_v1(
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"""
_AVAILABLE = """
SELECT to_regproc($1) IS NOT NULL, to_regproc($2) IS NOT NULL, to_regproc($3) IS NOT NULL,
       to_regproc($4) IS NOT NULL, to_regproc($5) IS NOT NULL, to_regproc($6) IS NOT NULL"""
HRG_FUNCTION = "gw_hrg_transfer_v1"
_JDB_CALL = """
SELECT * FROM gw_jdb_transfer_v2($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"""
#: Migration 0008's version (v1 of 0005 answered the same, with more work per call).
JDB_FUNCTION = "gw_jdb_transfer_v2"
#: The batch forms (migration 0007): the same arguments as arrays, one row per call; each runs
#: a batch in one subtransaction unless a call raises (seamless and HRG migration 0009, JDB
#: 0010, on top of 0008's gw_jdb_transfer_v2); they lock their players up front, and the
#: seamless one calls its per-call function as an expression (migration 0011).
BATCH_FUNCTIONS = ("gw_seamless_batch_v2", "gw_hrg_batch_v2", "gw_jdb_batch_v3")
_BATCH = """
SELECT o_index, o_status, o_code, o_detail, o_body FROM gw_seamless_batch_v2(
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
    $21, $22)"""
_HRG_BATCH = """
SELECT o_index, o_status, o_code, o_detail, o_body FROM gw_hrg_batch_v2(
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"""
_JDB_BATCH = """
SELECT * FROM gw_jdb_batch_v3($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"""
#: Statements of one function in flight at once per process before calls start to queue.
FLIGHTS_MAX = 1


def _json(value: Mapping[str, Any]) -> str:
    """Canonical JSON of a detail, byte for byte what PostgresStore writes."""
    return json.dumps(dict(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def call_arguments(r: SeamlessRequest) -> tuple[Any, ...]:
    """The 22 arguments of ``gw_seamless_call_v1`` for ``r`` (also used by the benchmarks)."""
    note = dict(r.note)
    member = _json(note)[1:-1] if note else None
    return (
        r.client_id,
        r.endpoint,
        r.kind,
        r.call,
        r.token,
        r.ext_id,
        r.amount_minor,
        r.currency,
        r.now_ms,
        r.retention_ms,
        r.max_amount_minor,
        r.max_balance_minor,
        r.credit_limit_minor,
        r.shards,
        _json(note),
        _json({"tombstone": True, **note}),
        member,
        min(note) if note else None,
        r.fp_prefix,
        r.fp_suffix,
        list(r.body_parts),
        r.balance_first,
    )


def hrg_arguments(r: HrgRequest) -> tuple[Any, ...]:
    """The 16 arguments of ``gw_hrg_transfer_v1`` for ``r``."""
    return (
        r.client_id,
        r.kind,
        r.user_id,
        json.dumps(r.user_id, ensure_ascii=False),  # as _json writes it inside the detail
        r.transaction_code,
        r.all_buckets,
        r.cash_minor,
        r.free_minor,
        r.fingerprint,
        r.now_ms,
        r.max_amount_minor,
        r.max_balance_minor,
        r.credit_limit_minor,
        r.shards,
        list(r.body_parts),
        list(r.hole_order),
    )


def jdb_arguments(r: JdbRequest) -> tuple[Any, ...]:
    """The 13 arguments of ``gw_jdb_transfer_v2`` for ``r``."""
    return (
        r.client_id,
        r.lock_key,
        r.uid,
        json.dumps(r.uid, ensure_ascii=False),  # as _json writes it inside the detail
        r.serial_no,
        r.amount_minor,
        r.all_cash_out,
        json.dumps(r.remark, ensure_ascii=False),
        r.now_ms,
        r.limit_minor,
        r.max_cooldown_ms,
        r.credit_limit_minor,
        r.shards,
    )


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """Pool release hook: nothing to reset (see the module docstring)."""
    del conn


class FastPostgresStore(PostgresStore):
    """PostgresStore that runs seamless two-phase calls as one SQL function call."""

    def __init__(
        self, url: str, *, fastpath: bool = True, batch_max: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(url, **kwargs)
        if not 1 <= batch_max <= BATCH_LIMIT:
            raise ValueError(f"GAMEWALLET_PG_BATCH_MAX must be 1 to {BATCH_LIMIT}, not {batch_max}")
        self.fastpath_wanted = fastpath
        #: Most concurrent fast-path calls sent as one transaction (1: each on its own).
        self.batch_max = batch_max
        #: True once start() found the function in the database (seamless / HRG).
        self.fastpath = False
        self.fastpath_hrg = False
        self.fastpath_jdb = False
        #: Set by start(): the three lanes (seamless, HRG, JDB) and what sends their calls.
        self.group: GroupCommit | None = None
        self._lanes: tuple[Lane, Lane, Lane] | None = None

    def __repr__(self) -> str:  # never show the URL: it may hold a password
        return f"<FastPostgresStore max_size={self.max_size} fastpath={self.fastpath}>"

    async def start(self) -> None:
        """Open the pool (without the per-release reset) and look for the fast-path function."""
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self.min_size,
                max_size=self.max_size,
                command_timeout=self.command_timeout_s,
                timeout=self.command_timeout_s,  # connecting
                server_settings={"application_name": "gamewallet"},
                reset=_keep_session,
            )
            found = await self._pool.fetchrow(
                _AVAILABLE, FUNCTION, HRG_FUNCTION, JDB_FUNCTION, *BATCH_FUNCTIONS
            )
        except _DRIVER_ERRORS as exc:
            raise _store_error(exc) from exc
        assert found is not None
        self.fastpath = bool(found[0]) and self.fastpath_wanted
        self.fastpath_hrg = bool(found[1]) and self.fastpath_wanted
        self.fastpath_jdb = bool(found[2]) and self.fastpath_wanted
        self._lanes = (
            Lane(_CALL, _BATCH if found[3] else None),
            Lane(_HRG_CALL, _HRG_BATCH if found[4] else None),
            Lane(_JDB_CALL, _JDB_BATCH if found[5] else None),
        )
        self.group = GroupCommit(
            self._pool,
            batch_max=self.batch_max,
            flights_max=FLIGHTS_MAX,
            timeout_s=self.command_timeout_s,
        )

    def commit_stats(self) -> dict[str, int]:
        """Group commit since start (for /metrics): batch statements sent, the calls they
        carried, and the calls that went on their own statement."""
        group = self.group
        if group is None:
            return {"batches": 0, "batched_calls": 0, "single_calls": 0}
        return {
            "batches": group.batches,
            "batched_calls": group.batched_calls,
            "single_calls": group.single_calls,
        }

    async def close(self) -> None:
        """Let the batches in flight land, then close the pool."""
        group, self.group = self.group, None
        if group is not None:
            await group.drain()
        await super().close()

    async def run(self, use_case: UseCase[T]) -> T:
        """Run ``use_case``: in one statement when it is a fast offer, else as PostgresStore."""
        offer = use_case if isinstance(use_case, FastOffer) else None
        group, lanes = self.group, self._lanes
        if offer is None or group is None or lanes is None:
            return await super().run(use_case)
        request = offer.request
        if isinstance(request, SeamlessRequest) and self.fastpath:
            lane, args = lanes[0], call_arguments(request)
        elif isinstance(request, HrgRequest) and self.fastpath_hrg:
            lane, args = lanes[1], hrg_arguments(request)
        elif isinstance(request, JdbRequest) and self.fastpath_jdb:
            lane, args = lanes[2], jdb_arguments(request)
        else:
            return await super().run(use_case)
        try:
            row = await group.row(lane, args)
        except BaseException:
            use_case.close()
            raise
        status = row["o_status"]
        if status == "generic":
            return await super().run(use_case)
        use_case.close()
        if status == "error":
            raise WalletError(ErrorCode[row["o_code"]], row["o_detail"])
        assert status == "ok", f"unknown fast-path status {status!r}"
        if offer.finish is not None:
            result: T = offer.finish(dict(row))
            return result
        body: T = bytes(row["o_body"])  # type: ignore[assignment]  # an offer without finish
        return body

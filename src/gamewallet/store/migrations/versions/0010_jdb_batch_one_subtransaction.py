"""PostgreSQL fast path: JDB's batch in one subtransaction; its per-call function never scans.

Migration 0009 did two things for seamless and HRG; this one does them for JDB action 19.

1. ``gw_jdb_batch_v3`` runs a batch of ``gw_jdb_transfer_v2`` calls in one subtransaction.
   ``gw_jdb_batch_v2`` (migration 0008) gives each call its own subtransaction, so calls of a
   batch that lock and update the same rows (a player's accounts, and above all the agent's
   cash shard, which every call on a player of the same shard updates) store a multixact in
   each new row version's ``xmax``, which every later read of the row resolves. v3 is built by
   0009's generator, exactly as ``gw_seamless_batch_v2`` and ``gw_hrg_batch_v2``: the player
   locks, then every call in the same order as v2, inside one ``BEGIN … EXCEPTION`` block,
   the answers kept in arrays and returned only once nothing raised; if any call raised, the
   block is rolled back (nothing of the first try remains) and the batch runs again through
   ``gw_jdb_batch_v2``, one subtransaction per call (the raising call answers ``retry`` and
   is sent again alone by the caller). The same arguments and the same rows as v2.
2. ``gw_jdb_transfer_v2`` runs with ``enable_seqscan = off`` (a function setting), so that a
   pooled connection that planned its look-ups on a table vacuumed empty (``operations``,
   ``accounts`` of a new database) does not keep a sequential-scan plan while the table grows.
   ``gw_jdb_batch_v3`` has the setting too (the generator's); ``gw_jdb_batch_v2`` runs under
   it when v3 falls back to it.

The generator is imported from migration 0009 (frozen, so what it generates never changes);
its fallback is named after the batch (``…_v2`` → ``…_v1``), so v3's is renamed to v2.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Migration 0009's batch generator (a module name that starts with a digit is not importable
# by an import statement).
_batch_function: Callable[..., str] = importlib.import_module(
    "gamewallet.store.migrations.versions.0009_batch_one_subtransaction"
)._batch_function

_JDB_ARGS = (
    ("p_client_id", "bigint"),
    ("p_lock_key", "text"),
    ("p_uid", "text"),
    ("p_uid_json", "text"),
    ("p_serial", "text"),
    ("p_amount", "bigint"),
    ("p_all", "boolean"),
    ("p_remark_json", "text"),
    ("p_now_ms", "bigint"),
    ("p_limit", "bigint"),
    ("p_max_cooldown_ms", "bigint"),
    ("p_credit_limit", "bigint"),
    ("p_shards", "integer"),
)
_JDB_OUT = (
    ("o_status", "text"),
    ("o_code", "text"),
    ("o_detail", "text"),
    ("o_op_id", "bigint"),
    ("o_player", "bigint"),
    ("o_currency", "text"),
    ("o_signed", "bigint"),
    ("o_before", "bigint"),
    ("o_agent", "bigint"),
    ("o_op_detail", "text"),
)
# gw_jdb_batch_v2's look-up of call i's player (the same players, locked in the same order).
_JDB_PLAYER = """
        SELECT pl.id, pl.currency INTO v_player, v_currency FROM players pl
         WHERE pl.client_id = p_client_id[i] AND pl.external_id = p_uid[i] COLLATE "default";"""
_JDB_CALL = """gw_jdb_transfer_v2(
                      p_client_id[i], p_lock_key[i], p_uid[i], p_uid_json[i], p_serial[i],
                      p_amount[i], p_all[i], p_remark_json[i], p_now_ms[i], p_limit[i],
                      p_max_cooldown_ms[i], p_credit_limit[i], p_shards[i])"""


def _jdb_batch() -> str:
    """``gw_jdb_batch_v3``: 0009's batch, falling back to ``gw_jdb_batch_v2``."""
    sql = _batch_function("gw_jdb_batch_v3", _JDB_ARGS, _JDB_OUT, "p_uid", _JDB_PLAYER, _JDB_CALL)
    fallback = "FROM gw_jdb_batch_v3_v1("  # the generator's name for it
    assert sql.count(fallback) == 1, "0009's generator changed"
    return sql.replace(fallback, "FROM gw_jdb_batch_v2(")


_PER_CALL = (
    "gw_jdb_transfer_v2(bigint, text, text, text, text, bigint, boolean, text, bigint, bigint,"
    " bigint, bigint, integer)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's writer thread already commits many calls at once
    op.execute(_jdb_batch())
    op.execute(f"ALTER FUNCTION {_PER_CALL} SET enable_seqscan = off")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER FUNCTION {_PER_CALL} RESET enable_seqscan")
    op.execute("DROP FUNCTION IF EXISTS gw_jdb_batch_v3")

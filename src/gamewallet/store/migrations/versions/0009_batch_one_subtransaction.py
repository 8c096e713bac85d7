"""PostgreSQL fast path: a batch in one subtransaction; index look-ups that stay index look-ups.

1. A batch runs its calls in one subtransaction, not one each.

The batch functions of migration 0007 give every call its own subtransaction. Each has its
own transaction id, and PostgreSQL records two different ids on one row version as a
*multixact*: when call ``k + 1`` locks (``FOR UPDATE``) and updates a row that call ``k`` (or
the batch's up-front player lock) already locked or updated, the new row version's ``xmax``
is a new multixact. On a hot player every call of a batch touches the same cash account row
(and the same client shard row), so every call of the batch made a multixact, and every later
look-up of that row, in the batch and in the other processes' transactions until the page is
pruned, walked a chain of versions resolving each multixact's members
(``GetMultiXactIdMembers``: 12 % of PostgreSQL's CPU on the one-hot-player benchmark, with
waits on the multixact SLRU).

``gw_seamless_batch_v2`` and ``gw_hrg_batch_v2`` take the same arguments and return the same
rows as their ``_v1``. They first try the whole batch (player locks, then
every call in the same order as ``_v1``) inside one ``BEGIN … EXCEPTION`` block, keeping the
answers in arrays. If nothing raised, those answers are returned: one subtransaction id for
the whole batch, so a row's versions carry plain transaction ids and no multixact. If any call
raised (a broken invariant, a refused CHECK, a deadlock), the block's subtransaction is rolled
back, so nothing of the first try remains, and the batch is run again by ``_v1``, with one
subtransaction per call: exactly the answers ``_v1`` gives, the raising call answering
``retry`` and being run again alone by the caller. ``query_canceled`` is caught by neither,
as before. The answers of the first try are only returned once no call raised, so a row
returned always belongs to the try that committed.

2. The fast-path functions never plan a sequential scan.

PL/pgSQL plans each statement of a function once per session (after five custom plans, a
generic one) and keeps that plan for the life of the connection, until something invalidates
it (an ANALYZE of the table). A connection that planned the idempotency look-up while the
table was empty or one page long (a new database, a vacuumed empty table: ``reltuples = 0``)
chose a sequential scan, correctly for that size, and kept it while the table grew: measured
on the benchmark, 13,488 sequential scans of ``idempotency`` reading 132 million rows (10,000
per look-up, two look-ups per call), each holding the hot player's row lock, while the pool's
other connections, planned later, used the primary key. Every look-up of these functions is
meant to be an index look-up (a key, or a key prefix), so the per-call functions and the
batch functions now run with ``enable_seqscan = off`` (a function's own ``SET``: restored on
return, nothing else in the session sees it; it costs about a microsecond per call). The
planner then takes the index even for an empty table; were no index usable it would still
scan (the setting adds a cost, it forbids nothing).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_SEAMLESS_ARGS = (
    ("p_client_id", "bigint"),
    ("p_endpoint", "text"),
    ("p_kind", "text"),
    ("p_call", "text"),
    ("p_token", "text"),
    ("p_ext_id", "text"),
    ("p_amount", "bigint"),
    ("p_currency", "text"),
    ("p_now_ms", "bigint"),
    ("p_retention_ms", "bigint"),
    ("p_max_amount", "bigint"),
    ("p_max_balance", "bigint"),
    ("p_credit_limit", "bigint"),
    ("p_shards", "integer"),
    ("p_open_detail", "text"),
    ("p_tomb_detail", "text"),
    ("p_note_member", "text"),
    ("p_note_min_key", "text"),
    ("p_fp_prefix", "text"),
    ("p_fp_suffix", "text"),
    ("p_body", "bytea"),
    ("p_balance_first", "boolean"),
)
_HRG_ARGS = (
    ("p_client_id", "bigint"),
    ("p_kind", "text"),
    ("p_user_id", "text"),
    ("p_user_json", "text"),
    ("p_code", "text"),
    ("p_all", "boolean"),
    ("p_cash", "bigint"),
    ("p_free", "bigint"),
    ("p_fp", "text"),
    ("p_now_ms", "bigint"),
    ("p_max_amount", "bigint"),
    ("p_max_minor", "bigint"),
    ("p_credit_limit", "bigint"),
    ("p_shards", "integer"),
    ("p_parts", "bytea"),
    ("p_order", "integer"),
)
_BODY_OUT = (("o_status", "text"), ("o_code", "text"), ("o_detail", "text"), ("o_body", "bytea"))
# How each batch function finds the player (and its currency) of call i: the same look-up as
# its _v1, so the calls run in the same order and lock the same players.
_SEAMLESS_PLAYER = """
        SELECT s.player_id, pl.currency INTO v_player, v_currency
          FROM sessions s JOIN players pl ON pl.id = s.player_id
         WHERE s.token = p_token[i] COLLATE "default" AND s.client_id = p_client_id[i];"""
_HRG_PLAYER = """
        SELECT pl.id, pl.currency INTO v_player, v_currency FROM players pl
         WHERE pl.client_id = p_client_id[i] AND pl.external_id = p_user_id[i] COLLATE "default";"""
# Call i's arguments for the per-call function (array arguments of a call are rows of 2-D
# arrays, taken out as 1-D arrays exactly as _v1 does).
_SEAMLESS_CALL = """gw_seamless_call_v1(
                      p_client_id[i], p_endpoint[i], p_kind[i], p_call[i], p_token[i],
                      p_ext_id[i], p_amount[i], p_currency[i], p_now_ms[i], p_retention_ms[i],
                      p_max_amount[i], p_max_balance[i], p_credit_limit[i], p_shards[i],
                      p_open_detail[i], p_tomb_detail[i], p_note_member[i], p_note_min_key[i],
                      p_fp_prefix[i], p_fp_suffix[i], ARRAY(SELECT unnest(p_body[i:i][:])),
                      p_balance_first[i])"""
_HRG_CALL = """gw_hrg_transfer_v1(
                      p_client_id[i], p_kind[i], p_user_id[i], p_user_json[i], p_code[i],
                      p_all[i], p_cash[i], p_free[i], p_fp[i], p_now_ms[i], p_max_amount[i],
                      p_max_minor[i], p_credit_limit[i], p_shards[i],
                      ARRAY(SELECT unnest(p_parts[i:i][:])),
                      ARRAY(SELECT unnest(p_order[i:i][:])))"""


def _batch_function(
    name: str,
    args: tuple[tuple[str, str], ...],
    outs: tuple[tuple[str, str], ...],
    count_arg: str,
    find_player: str,
    call: str,
) -> str:
    """The _v2 batch function ``name``: one subtransaction for the batch, else ``_v1``; no
    sequential scans (see 2. above)."""
    v1 = name.removesuffix("_v2") + "_v1"
    params = ", ".join(f"{arg} {kind}[]" for arg, kind in args)
    out_params = ", ".join(f"OUT {out} {kind}" for out, kind in outs)
    arrays = " ".join(f"a_{out[2:]} {kind}[] := '{{}}';" for out, kind in outs)
    columns = ", ".join(f"c.{out}" for out, _ in outs)
    targets = ", ".join(out for out, _ in outs)
    keep = " ".join(f"a_{out[2:]}[i] := {out};" for out, _ in outs)
    give = " ".join(f"{out} := a_{out[2:]}[i];" for out, _ in outs)
    forward = ", ".join(arg for arg, _ in args)
    # Built from this module's constants only (no outside input).
    return f"""
CREATE OR REPLACE FUNCTION {name}(
    {params},
    OUT o_index integer, {out_params})
RETURNS SETOF record
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    v_ids bigint[] := '{{}}'; v_currencies text[] := '{{}}'; v_order integer[]; i integer;
    v_player bigint; v_currency text; v_tried boolean := false;
    {arrays}
BEGIN
    FOR i IN 1 .. coalesce(array_length({count_arg}, 1), 0) LOOP{find_player}
        v_ids[i] := v_player; v_currencies[i] := v_currency;
    END LOOP;
    v_order := gw_batch_order_v1(p_client_id, v_currencies, v_ids, p_shards);
    -- The whole batch in one subtransaction (one transaction id for every row it writes).
    BEGIN
        PERFORM gw_lock_players_v1(v_ids);
        FOREACH i IN ARRAY v_order LOOP
            SELECT {columns}
              INTO {targets}
              FROM {call} AS c;
            {keep}
        END LOOP;
        v_tried := true;
    EXCEPTION WHEN OTHERS THEN
        v_tried := false;  -- rolled back: nothing of the first try remains
    END;
    IF NOT v_tried THEN
        -- One subtransaction per call: a call that raises answers 'retry', alone.
        RETURN QUERY SELECT * FROM {v1}({forward});
        RETURN;
    END IF;
    FOREACH i IN ARRAY v_order LOOP
        o_index := i; {give}
        RETURN NEXT;
    END LOOP;
END
$$"""  # noqa: S608


_FUNCTIONS = (
    _batch_function(
        "gw_seamless_batch_v2",
        _SEAMLESS_ARGS,
        _BODY_OUT,
        "p_token",
        _SEAMLESS_PLAYER,
        _SEAMLESS_CALL,
    ),
    _batch_function("gw_hrg_batch_v2", _HRG_ARGS, _BODY_OUT, "p_user_id", _HRG_PLAYER, _HRG_CALL),
)

# The per-call functions (migration 0005), alone or inside a batch: index look-ups only.
_PER_CALL = (
    (
        "gw_seamless_call_v1(bigint, text, text, text, text, text, bigint, text, bigint, bigint,"
        " bigint, bigint, bigint, integer, text, text, text, text, text, text, bytea[], boolean)"
    ),
    (
        "gw_hrg_transfer_v1(bigint, text, text, text, text, boolean, bigint, bigint, text, bigint,"
        " bigint, bigint, bigint, integer, bytea[], integer[])"
    ),
)

# Each name has one signature (PostgreSQL then needs no argument list to drop it).
_DROPS = tuple(
    f"DROP FUNCTION IF EXISTS {name}" for name in ("gw_seamless_batch_v2", "gw_hrg_batch_v2")
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's writer thread already commits many calls at once
    for statement in _FUNCTIONS:
        op.execute(statement)
    for function in _PER_CALL:
        op.execute(f"ALTER FUNCTION {function} SET enable_seqscan = off")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for function in _PER_CALL:
        op.execute(f"ALTER FUNCTION {function} RESET enable_seqscan")
    for statement in _DROPS:
        op.execute(statement)

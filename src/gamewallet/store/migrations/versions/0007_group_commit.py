"""PostgreSQL group commit: many fast-path calls in one transaction, one commit.

``gw_seamless_batch_v1``, ``gw_hrg_batch_v1`` and ``gw_jdb_batch_v1`` take the arguments of
the per-call functions of migration 0005 as arrays (element ``i`` of every array is call
``i``) and run each call through its per-call function, in one transaction, so a batch of
concurrent calls shares one round trip and one commit (one WAL flush). They return one row per
call: ``o_index`` (1-based, the call's position in the arrays) and the per-call function's
output columns.

Invariants:

* Each call runs in its own subtransaction (a ``BEGIN … EXCEPTION`` block): an unexpected
  error (a raised invariant, a refused CHECK, a deadlock) undoes that call only and answers
  ``o_status = 'retry'`` with the SQLSTATE in ``o_code``; the caller then runs that call
  alone on the per-call function, which gives exactly the per-call answer or error.
  ``query_canceled`` is not caught (PL/pgSQL never catches it): a statement timeout stops
  the whole batch.
* Lock order. A per-call transaction locks its player row (with its two accounts), then
  client account shards. A batch first locks every player it will touch, in player id order,
  then runs its calls sorted by (client, currency, shard, player), so that the shard rows
  too are taken in ascending order. Two batches, or a batch and per-call transactions, then
  wait on each other without a cycle, except on rare paths (a client with a credit limit
  locks all its shards; two calls on the same new id from two processes); there a deadlock
  costs PostgreSQL's ``deadlock_timeout`` and the call is retried alone.
* Calls of one batch were all in flight at the same time (none was answered yet), so any
  order of them is an order they could have arrived in; calls on the same player keep their
  arrival order (the sort is stable on the index).
* Keep batches at or under 64 calls: each call that writes takes a subtransaction id, and
  past 64 per transaction PostgreSQL's snapshot cache overflows (slower for every session).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The player rows (and both of their accounts, as GetPlayer(lock=True) and the per-call
# functions lock them) of a batch, locked in id order before anything else.
_LOCK_PLAYERS = """
CREATE OR REPLACE FUNCTION gw_lock_players_v1(p_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    -- One indexed statement per player (the per-call functions' own lock), in id order: a
    -- single join over the whole array can get a plan that scans the accounts.
    FOR v_id IN SELECT DISTINCT u FROM unnest(p_ids) AS u WHERE u IS NOT NULL ORDER BY u LOOP
        PERFORM 1
          FROM players p
          JOIN accounts c ON c.owner_kind = 'player' AND c.owner_id = p.id
                         AND c.currency = p.currency AND c.bucket = 'cash' AND c.shard = 0
          JOIN accounts f ON f.owner_kind = 'player' AND f.owner_id = p.id
                         AND f.currency = p.currency AND f.bucket = 'free' AND f.shard = 0
         WHERE p.id = v_id
           FOR UPDATE OF p, c, f;
    END LOOP;
END
$$"""

# The order in which a batch runs its calls (1-based indexes), from each call's player and
# that player's currency (NULL when there is none: those calls lock nothing and go last).
_BATCH_ORDER = """
CREATE OR REPLACE FUNCTION gw_batch_order_v1(
    p_client_id bigint[], p_currency text[], p_player bigint[], p_shards integer[])
RETURNS integer[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(t.i::integer ORDER BY t.client_id, t.currency,
                                                   t.player % t.shards, t.player, t.i),
                    ARRAY[]::integer[])
      FROM unnest(p_client_id, p_currency, p_player, p_shards) WITH ORDINALITY
           AS t(client_id, currency, player, shards, i)
$$"""

_SEAMLESS_BATCH = """
CREATE OR REPLACE FUNCTION gw_seamless_batch_v1(
    p_client_id bigint[], p_endpoint text[], p_kind text[], p_call text[], p_token text[],
    p_ext_id text[], p_amount bigint[], p_currency text[], p_now_ms bigint[],
    p_retention_ms bigint[], p_max_amount bigint[], p_max_balance bigint[],
    p_credit_limit bigint[], p_shards integer[], p_open_detail text[], p_tomb_detail text[],
    p_note_member text[], p_note_min_key text[], p_fp_prefix text[], p_fp_suffix text[],
    p_body bytea[], p_balance_first boolean[],
    OUT o_index integer, OUT o_status text, OUT o_code text, OUT o_detail text,
    OUT o_body bytea)
RETURNS SETOF record
LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[] := '{}'; v_currencies text[] := '{}'; v_order integer[]; i integer;
    v_player bigint; v_currency text;
BEGIN
    -- The player of each call is its session's (a token of another client locks nothing);
    -- one indexed lookup per call.
    FOR i IN 1 .. coalesce(array_length(p_token, 1), 0) LOOP
        SELECT s.player_id, pl.currency INTO v_player, v_currency
          FROM sessions s JOIN players pl ON pl.id = s.player_id
         WHERE s.token = p_token[i] COLLATE "default" AND s.client_id = p_client_id[i];
        v_ids[i] := v_player; v_currencies[i] := v_currency;
    END LOOP;
    v_order := gw_batch_order_v1(p_client_id, v_currencies, v_ids, p_shards);
    PERFORM gw_lock_players_v1(v_ids);
    FOREACH i IN ARRAY v_order LOOP
        BEGIN
            SELECT c.o_status, c.o_code, c.o_detail, c.o_body
              INTO o_status, o_code, o_detail, o_body
              FROM gw_seamless_call_v1(
                  p_client_id[i], p_endpoint[i], p_kind[i], p_call[i], p_token[i],
                  p_ext_id[i], p_amount[i], p_currency[i], p_now_ms[i], p_retention_ms[i],
                  p_max_amount[i], p_max_balance[i], p_credit_limit[i], p_shards[i],
                  p_open_detail[i], p_tomb_detail[i], p_note_member[i], p_note_min_key[i],
                  p_fp_prefix[i], p_fp_suffix[i], ARRAY(SELECT unnest(p_body[i:i][:])),
                  p_balance_first[i]) AS c;
        EXCEPTION WHEN OTHERS THEN
            o_status := 'retry'; o_code := SQLSTATE; o_detail := NULL; o_body := NULL;
        END;
        o_index := i;
        RETURN NEXT;
    END LOOP;
END
$$"""

_HRG_BATCH = """
CREATE OR REPLACE FUNCTION gw_hrg_batch_v1(
    p_client_id bigint[], p_kind text[], p_user_id text[], p_user_json text[], p_code text[],
    p_all boolean[], p_cash bigint[], p_free bigint[], p_fp text[], p_now_ms bigint[],
    p_max_amount bigint[], p_max_minor bigint[], p_credit_limit bigint[], p_shards integer[],
    p_parts bytea[], p_order integer[],
    OUT o_index integer, OUT o_status text, OUT o_code text, OUT o_detail text,
    OUT o_body bytea)
RETURNS SETOF record
LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[] := '{}'; v_currencies text[] := '{}'; v_order integer[]; i integer;
    v_player bigint; v_currency text;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_user_id, 1), 0) LOOP
        SELECT pl.id, pl.currency INTO v_player, v_currency FROM players pl
         WHERE pl.client_id = p_client_id[i] AND pl.external_id = p_user_id[i] COLLATE "default";
        v_ids[i] := v_player; v_currencies[i] := v_currency;
    END LOOP;
    v_order := gw_batch_order_v1(p_client_id, v_currencies, v_ids, p_shards);
    PERFORM gw_lock_players_v1(v_ids);
    FOREACH i IN ARRAY v_order LOOP
        BEGIN
            SELECT c.o_status, c.o_code, c.o_detail, c.o_body
              INTO o_status, o_code, o_detail, o_body
              FROM gw_hrg_transfer_v1(
                  p_client_id[i], p_kind[i], p_user_id[i], p_user_json[i], p_code[i], p_all[i],
                  p_cash[i], p_free[i], p_fp[i], p_now_ms[i], p_max_amount[i], p_max_minor[i],
                  p_credit_limit[i], p_shards[i], ARRAY(SELECT unnest(p_parts[i:i][:])),
                  ARRAY(SELECT unnest(p_order[i:i][:]))) AS c;
        EXCEPTION WHEN OTHERS THEN
            o_status := 'retry'; o_code := SQLSTATE; o_detail := NULL; o_body := NULL;
        END;
        o_index := i;
        RETURN NEXT;
    END LOOP;
END
$$"""

_JDB_BATCH = """
CREATE OR REPLACE FUNCTION gw_jdb_batch_v1(
    p_client_id bigint[], p_lock_key text[], p_uid text[], p_uid_json text[], p_serial text[],
    p_amount bigint[], p_all boolean[], p_remark_json text[], p_now_ms bigint[],
    p_limit bigint[], p_max_cooldown_ms bigint[], p_credit_limit bigint[], p_shards integer[],
    OUT o_index integer, OUT o_status text, OUT o_code text, OUT o_detail text,
    OUT o_op_id bigint, OUT o_player bigint, OUT o_currency text, OUT o_signed bigint,
    OUT o_before bigint, OUT o_agent bigint, OUT o_op_detail text)
RETURNS SETOF record
LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[] := '{}'; v_currencies text[] := '{}'; v_order integer[]; i integer;
    v_player bigint; v_currency text;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_uid, 1), 0) LOOP
        SELECT pl.id, pl.currency INTO v_player, v_currency FROM players pl
         WHERE pl.client_id = p_client_id[i] AND pl.external_id = p_uid[i] COLLATE "default";
        v_ids[i] := v_player; v_currencies[i] := v_currency;
    END LOOP;
    v_order := gw_batch_order_v1(p_client_id, v_currencies, v_ids, p_shards);
    PERFORM gw_lock_players_v1(v_ids);
    FOREACH i IN ARRAY v_order LOOP
        BEGIN
            SELECT c.o_status, c.o_code, c.o_detail, c.o_op_id, c.o_player, c.o_currency,
                   c.o_signed, c.o_before, c.o_agent, c.o_op_detail
              INTO o_status, o_code, o_detail, o_op_id, o_player, o_currency, o_signed,
                   o_before, o_agent, o_op_detail
              FROM gw_jdb_transfer_v1(
                  p_client_id[i], p_lock_key[i], p_uid[i], p_uid_json[i], p_serial[i],
                  p_amount[i], p_all[i], p_remark_json[i], p_now_ms[i], p_limit[i],
                  p_max_cooldown_ms[i], p_credit_limit[i], p_shards[i]) AS c;
        EXCEPTION WHEN OTHERS THEN
            o_status := 'retry'; o_code := SQLSTATE; o_detail := NULL; o_op_id := NULL;
            o_player := NULL; o_currency := NULL; o_signed := NULL; o_before := NULL;
            o_agent := NULL; o_op_detail := NULL;
        END;
        o_index := i;
        RETURN NEXT;
    END LOOP;
END
$$"""

# Each name has one signature (PostgreSQL then needs no argument list to drop it).
_DROPS = tuple(
    f"DROP FUNCTION IF EXISTS {name}"
    for name in (
        "gw_seamless_batch_v1",
        "gw_hrg_batch_v1",
        "gw_jdb_batch_v1",
        "gw_batch_order_v1",
        "gw_lock_players_v1",
    )
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's writer thread already commits many calls at once
    op.execute(_LOCK_PLAYERS)
    op.execute(_BATCH_ORDER)
    op.execute(_SEAMLESS_BATCH)
    op.execute(_HRG_BATCH)
    op.execute(_JDB_BATCH)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in _DROPS:
        op.execute(statement)

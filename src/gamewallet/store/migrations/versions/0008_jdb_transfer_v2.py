"""PostgreSQL: JDB action 19 without the per-call work it did not need (``gw_jdb_transfer_v2``).

``gw_jdb_transfer_v1`` (migration 0005) answered the agent's balance the way
``service.common.client_balance`` reads it: every cash shard of the agent, the missing ones
created empty first. It ran the creation as one ``INSERT … SELECT … FROM generate_series``
and a ``NOT EXISTS`` test of every shard (planned and run on every call, even though the
shards exist from the agent's first transfer on), then summed the shards: measured in one
backend, that insert alone was about 130 µs of CPU per call, a quarter of the function.
It also locked the agent's shard row with ``gw_client_shard_v1`` (a nested PL/pgSQL call, a
``SELECT … FOR UPDATE`` and its own WAL record) before updating that row by id.

``gw_jdb_transfer_v2`` takes the same arguments and returns the same columns, with the same
refusals in the same order, the same rows and the same answers:

* the agent's balance is ``count(*)`` and ``sum(posted_minor)`` of its cash shards in one
  index range scan; only when fewer than ``p_shards`` rows exist does it create the missing
  ones (the same statement as v1, so in shard order; empty shards add nothing to the sum);
* the agent's shard row is updated by its key (``UPDATE … RETURNING id``): the update takes
  the row lock the ``SELECT … FOR UPDATE`` took, at the same point of the lock order (after
  the player's rows, which are locked first); a shard that does not exist yet is created by
  ``gw_client_shard_v1`` as before, then updated by id;
* everything else (the advisory lock of the serialNo, the completed-serialNo check, the
  player's lock and checks, the cooldown hand-off to the generic path, the credit limit, the
  postings) is v1's, statement for statement.

``gw_jdb_batch_v2`` is ``gw_jdb_batch_v1`` (migration 0007) running ``gw_jdb_transfer_v2``.
The v1 functions stay, unchanged, for servers of the previous version.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# service.jdb._transfer (action 19), mirrored branch by branch as in gw_jdb_transfer_v1.
# tests/integration/test_fastpath_jdb_differential.py runs random calls through it and the
# generic path and compares every answer and row.
_JDB_TRANSFER = """
CREATE OR REPLACE FUNCTION gw_jdb_transfer_v2(
    p_client_id bigint, p_lock_key text, p_uid text, p_uid_json text, p_serial text,
    p_amount bigint, p_all boolean, p_remark_json text, p_now_ms bigint, p_limit bigint,
    p_max_cooldown_ms bigint, p_credit_limit bigint, p_shards integer,
    OUT o_status text, OUT o_code text, OUT o_detail text, OUT o_op_id bigint,
    OUT o_player bigint, OUT o_currency text, OUT o_signed bigint, OUT o_before bigint,
    OUT o_agent bigint, OUT o_op_detail text)
LANGUAGE plpgsql AS $$
DECLARE
    v_currency text; v_cash_acct bigint; v_posted bigint; v_held bigint; v_blocked boolean;
    v_locked boolean; v_closed boolean; v_game text; v_left_at bigint; v_withdraw boolean;
    v_total bigint; v_client_cash bigint; v_shard integer; v_count bigint;
BEGIN
    o_status := 'error';
    IF NOT pg_try_advisory_xact_lock(hashtextextended(p_lock_key, 0)) THEN
        o_code := 'IN_PROGRESS'; RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM operations WHERE client_id = p_client_id AND ns = 'wire'
                                          AND ext_id = p_serial COLLATE "default") THEN
        o_code := 'ALREADY_COMPLETED'; RETURN;
    END IF;
    SELECT p.id, p.currency, p.blocked, p.locked, p.closed, p.game_type, p.game_left_at_ms,
           c.id, c.posted_minor, c.held_minor
      INTO o_player, v_currency, v_blocked, v_locked, v_closed, v_game, v_left_at,
           v_cash_acct, v_posted, v_held
      FROM players p
      JOIN accounts c ON c.owner_kind = 'player' AND c.owner_id = p.id
                     AND c.currency = p.currency AND c.bucket = 'cash' AND c.shard = 0
      JOIN accounts f ON f.owner_kind = 'player' AND f.owner_id = p.id
                     AND f.currency = p.currency AND f.bucket = 'free' AND f.shard = 0
     WHERE p.client_id = p_client_id AND p.external_id = p_uid COLLATE "default"
       FOR UPDATE OF p, c, f;
    IF NOT FOUND THEN
        o_code := 'PLAYER_NOT_FOUND'; o_detail := 'no player ' || p_uid; RETURN;
    END IF;
    v_withdraw := p_all OR (p_amount IS NOT NULL AND p_amount < 0);
    IF v_closed THEN o_code := 'PLAYER_CLOSED'; RETURN; END IF;
    IF v_locked THEN o_code := 'PLAYER_LOCKED'; RETURN; END IF;
    IF v_blocked AND v_withdraw THEN o_code := 'PLAYER_BLOCKED'; RETURN; END IF;
    o_before := v_posted - v_held;
    IF v_withdraw THEN
        IF v_game IS NOT NULL THEN o_code := 'PLAYER_IN_GAME'; RETURN; END IF;
        IF v_left_at IS NOT NULL AND p_now_ms < v_left_at + p_max_cooldown_ms THEN
            o_status := 'generic'; RETURN;
        END IF;
        IF p_all THEN
            IF o_before = 0 THEN o_code := 'ZERO_BALANCE'; RETURN; END IF;
            o_signed := -o_before;
        ELSE
            o_signed := p_amount;
            IF -o_signed > o_before THEN o_code := 'INSUFFICIENT_FUNDS'; RETURN; END IF;
        END IF;
    ELSE
        o_signed := p_amount;
        IF o_signed >= p_limit THEN o_code := 'LIMIT_EXCEEDED'; RETURN; END IF;
        IF o_before + o_signed >= p_limit THEN o_code := 'BALANCE_LIMIT_EXCEEDED'; RETURN; END IF;
    END IF;
    o_op_detail := '{"after_minor":' || (o_before + o_signed)
        || ',"all_cash_out":' || CASE WHEN p_all THEN 'true' ELSE 'false' END
        || ',"before_minor":' || o_before || ',"remark":' || p_remark_json
        || ',"signed_minor":' || o_signed || ',"uid":' || p_uid_json || '}';
    INSERT INTO operations (client_id, ns, ext_id, kind, player_id, currency, amount_minor,
                            free_minor, state, created_at_ms, updated_at_ms, detail)
    VALUES (p_client_id, 'wire', p_serial,
            CASE WHEN o_signed < 0 THEN 'withdraw' ELSE 'deposit' END, o_player, v_currency,
            abs(o_signed), 0, 'completed', p_now_ms, p_now_ms, o_op_detail)
    ON CONFLICT (client_id, ns, ext_id) DO NOTHING
    RETURNING id INTO o_op_id;
    IF o_op_id IS NULL THEN o_code := 'ALREADY_COMPLETED'; RETURN; END IF;
    v_shard := (o_player % p_shards)::integer;
    IF p_credit_limit IS NOT NULL AND o_signed > 0 THEN
        SELECT coalesce(sum(posted_minor), 0) INTO v_total FROM (
            SELECT posted_minor FROM accounts
             WHERE owner_kind = 'client' AND owner_id = p_client_id AND currency = v_currency
               AND bucket = 'cash' AND shard >= 0 AND shard < p_shards
             ORDER BY shard FOR UPDATE) AS s;
        IF v_total - o_signed < -p_credit_limit THEN
            DELETE FROM operations WHERE id = o_op_id;
            o_op_id := NULL; o_code := 'CREDIT_LIMIT_EXCEEDED'; RETURN;
        END IF;
    END IF;
    -- service.common.move(cash_minor=signed): the agent's shard row is locked by its update
    -- (v1: SELECT ... FOR UPDATE in gw_client_shard_v1, then the update by id).
    UPDATE accounts SET posted_minor = posted_minor + o_signed WHERE id = v_cash_acct;
    UPDATE accounts SET posted_minor = posted_minor - o_signed
     WHERE owner_kind = 'client' AND owner_id = p_client_id AND currency = v_currency
       AND bucket = 'cash' AND shard = v_shard
    RETURNING id INTO v_client_cash;
    IF v_client_cash IS NULL THEN
        v_client_cash := gw_client_shard_v1(p_client_id, v_currency, 'cash', v_shard);
        UPDATE accounts SET posted_minor = posted_minor - o_signed WHERE id = v_client_cash;
    END IF;
    INSERT INTO postings (operation_id, account_id, currency, amount_minor, created_at_ms)
    VALUES (o_op_id, v_cash_acct, v_currency, o_signed, p_now_ms),
           (o_op_id, v_client_cash, v_currency, -o_signed, p_now_ms);
    -- service.common.client_balance: the sum of the agent's cash shards; the missing ones are
    -- created empty (they add nothing to the sum), which v1 tried on every call.
    SELECT count(*), coalesce(sum(posted_minor), 0) INTO v_count, o_agent FROM accounts
     WHERE owner_kind = 'client' AND owner_id = p_client_id AND currency = v_currency
       AND bucket = 'cash' AND shard >= 0 AND shard < p_shards;
    IF v_count < p_shards THEN
        INSERT INTO accounts (owner_kind, owner_id, currency, bucket, shard, no_overdraft)
        SELECT 'client', p_client_id, v_currency, 'cash', s, false
          FROM generate_series(0, p_shards - 1) AS s
         WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE owner_kind = 'client'
                              AND owner_id = p_client_id AND currency = v_currency
                              AND bucket = 'cash' AND shard = s)
        ON CONFLICT (owner_kind, owner_id, currency, bucket, shard) DO NOTHING;
    END IF;
    o_currency := v_currency;
    o_status := 'ok';
END
$$"""

# Group commit (see migration 0007): the batch form of gw_jdb_transfer_v2.
_JDB_BATCH = """
CREATE OR REPLACE FUNCTION gw_jdb_batch_v2(
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
              FROM gw_jdb_transfer_v2(
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


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite runs action 19 in store/sqlite_fastpath.py
    op.execute(_JDB_TRANSFER)
    op.execute(_JDB_BATCH)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS gw_jdb_batch_v2")
    op.execute("DROP FUNCTION IF EXISTS gw_jdb_transfer_v2")

"""PostgreSQL fast path: each seamless two-phase call as one SQL function (one round trip).

``gw_seamless_call_v1`` does in one statement what ``service.seamless.wallet_call`` does in a
use-case transaction: resolve the token, lock the player row and its accounts, replay a stored
answer, check 103/104/105/109, claim or find the operation, follow the state table of
``core.states``, move the money (client account shards as in ``service.common.move``) and store
the response bytes with their fingerprint. The response is built from a template the caller
renders in Python (literal byte parts around the balance and the currency), so the stored bytes
are the Python renderer's bytes. Refusals return a code and change nothing (a claimed row is
deleted before returning). ``o_status = 'generic'`` means "not handled, nothing written: run the
generic path". SQLite gets nothing here: it keeps the generic path.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# core.money.format_minor at scale 4 with no minimum fraction digits: 51800, 51569.5, -0.25.
_FORMAT_MINOR = """
CREATE OR REPLACE FUNCTION gw_format_minor(m bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN m < 0 THEN '-' ELSE '' END
        || (abs(m) / 10000)::text
        || CASE WHEN abs(m) % 10000 = 0 THEN ''
                ELSE '.' || rtrim(lpad((abs(m) % 10000)::text, 4, '0'), '0') END
$$"""

# Parameters compared with indexed text columns carry COLLATE "default": PL/pgSQL gives its
# parameters the call's input collation, which can differ from the columns' (seen: "C" against
# a C.UTF-8 database), and the planner then cannot use the unique indexes at all.
# Every branch below names the Python it mirrors; tests/integration/test_fastpath_differential.py
# runs random call sequences through both and compares every answer and balance.
_SEAMLESS_CALL = """
CREATE OR REPLACE FUNCTION gw_seamless_call_v1(
    p_client_id bigint, p_endpoint text, p_kind text, p_call text, p_token text,
    p_ext_id text, p_amount bigint, p_currency text, p_now_ms bigint, p_retention_ms bigint,
    p_max_amount bigint, p_max_balance bigint, p_credit_limit bigint, p_shards integer,
    p_open_detail text, p_tomb_detail text, p_note_member text, p_note_min_key text,
    p_fp_prefix text, p_fp_suffix text, p_body bytea[], p_balance_first boolean,
    OUT o_status text, OUT o_code text, OUT o_detail text, OUT o_body bytea)
LANGUAGE plpgsql AS $$
DECLARE
    v_s_client bigint; v_s_player bigint; v_s_kind text; v_expires bigint;
    v_player bigint; v_currency text; v_blocked boolean;
    v_cash bigint; v_posted bigint; v_held bigint; v_pending bigint;
    v_fp text; v_st_fp text; v_st_body bytea; v_st_at bigint; v_stored boolean;
    v_available bigint; v_after bigint;
    v_op_id bigint; v_op_kind text; v_op_player bigint; v_op_amount bigint;
    v_op_currency text; v_op_state text; v_op_detail text; v_found boolean;
    v_effect text; v_next text; v_gets bigint; v_total bigint; v_shard integer;
    v_client_acct bigint; v_bal text;
BEGIN
    o_status := 'error';
    -- _session_player: 102 unless the token is a session of this client.
    SELECT client_id, player_id, kind, expires_at_ms
      INTO v_s_client, v_s_player, v_s_kind, v_expires
      FROM sessions WHERE token = p_token COLLATE "default";
    IF NOT FOUND OR v_s_client <> p_client_id OR v_s_kind <> 'session' THEN
        o_code := 'UNKNOWN_TOKEN'; RETURN;
    END IF;
    -- call_fingerprint: sha256 of the JSON the caller split around the player id.
    -- A replay without any lock: a stored answer never changes once committed (only the purge
    -- deletes it), so when one matches it is exactly what the locked read below would find.
    -- Read-only, this statement then needs no transaction id, no WAL and no commit flush.
    v_fp := encode(sha256(convert_to(p_fp_prefix || v_s_player::text || p_fp_suffix, 'UTF8')),
                   'hex');
    SELECT fingerprint, response, created_at_ms INTO v_st_fp, v_st_body, v_st_at
      FROM idempotency
     WHERE client_id = p_client_id AND scope = p_endpoint COLLATE "default"
       AND key = p_ext_id COLLATE "default";
    IF FOUND AND p_now_ms - v_st_at < p_retention_ms AND v_st_fp = v_fp
       AND EXISTS (SELECT 1 FROM players WHERE id = v_s_player) THEN
        o_status := 'ok'; o_body := v_st_body; RETURN;
    END IF;
    -- GetPlayer(lock=True): the player row and both accounts, locked together (player first).
    SELECT p.id, p.currency, p.blocked, c.id, c.posted_minor, c.held_minor, c.pending_minor
      INTO v_player, v_currency, v_blocked, v_cash, v_posted, v_held, v_pending
      FROM players p
      JOIN accounts c ON c.owner_kind = 'player' AND c.owner_id = p.id
                     AND c.currency = p.currency AND c.bucket = 'cash' AND c.shard = 0
      JOIN accounts f ON f.owner_kind = 'player' AND f.owner_id = p.id
                     AND f.currency = p.currency AND f.bucket = 'free' AND f.shard = 0
     WHERE p.id = v_s_player
       FOR UPDATE OF p, c, f;
    IF NOT FOUND THEN
        o_code := 'PLAYER_NOT_FOUND'; RETURN;
    END IF;
    -- _stored_answer: an expired record no longer answers.
    SELECT fingerprint, response, created_at_ms INTO v_st_fp, v_st_body, v_st_at
      FROM idempotency
     WHERE client_id = p_client_id AND scope = p_endpoint COLLATE "default"
       AND key = p_ext_id COLLATE "default";
    v_stored := FOUND AND p_now_ms - v_st_at < p_retention_ms;
    IF v_stored AND v_st_fp = v_fp THEN
        o_status := 'ok'; o_body := v_st_body; RETURN;
    END IF;
    IF p_call = 'open' AND p_kind = 'withdraw' THEN
        IF v_expires <= p_now_ms THEN o_code := 'SESSION_EXPIRED'; RETURN; END IF;
        IF v_blocked THEN o_code := 'PLAYER_BLOCKED'; RETURN; END IF;
    END IF;
    IF p_currency IS NOT NULL AND p_currency <> v_currency THEN
        o_code := 'CURRENCY_MISMATCH'; RETURN;
    END IF;
    IF v_stored THEN
        o_code := 'ID_REUSED'; o_detail := 'the same id was answered for other content'; RETURN;
    END IF;
    v_available := v_posted - v_held;

    <<apply>>
    BEGIN
        IF p_call = 'open' THEN
            -- Claim the id; the unique key decides between concurrent claims.
            INSERT INTO operations (client_id, ns, ext_id, kind, player_id, currency,
                                    amount_minor, free_minor, state, created_at_ms,
                                    updated_at_ms, detail)
            VALUES (p_client_id, 'wire', p_ext_id, p_kind, v_player, v_currency, p_amount, 0,
                    CASE p_kind WHEN 'withdraw' THEN 'held' ELSE 'pending' END,
                    p_now_ms, p_now_ms, p_open_detail)
            ON CONFLICT (client_id, ns, ext_id) DO NOTHING
            RETURNING id INTO v_op_id;
            IF v_op_id IS NOT NULL THEN
                -- _open: 111, then 106; a refusal un-claims the id (the rollback's effect).
                IF p_amount > p_max_amount THEN
                    DELETE FROM operations WHERE id = v_op_id;
                    o_code := 'LIMIT_EXCEEDED'; RETURN;
                END IF;
                IF p_kind = 'deposit' THEN
                    IF v_posted + v_pending + p_amount > p_max_balance THEN
                        DELETE FROM operations WHERE id = v_op_id;
                        o_code := 'BALANCE_LIMIT_EXCEEDED'; RETURN;
                    END IF;
                    UPDATE accounts SET pending_minor = pending_minor + p_amount
                     WHERE id = v_cash;
                    v_after := v_available;
                ELSE
                    IF v_available < p_amount THEN
                        DELETE FROM operations WHERE id = v_op_id;
                        o_code := 'INSUFFICIENT_FUNDS'; RETURN;
                    END IF;
                    UPDATE accounts SET held_minor = held_minor + p_amount WHERE id = v_cash;
                    v_after := v_available - p_amount;
                END IF;
                EXIT apply;
            END IF;
        END IF;
        SELECT id, kind, player_id, amount_minor, currency, state, detail
          INTO v_op_id, v_op_kind, v_op_player, v_op_amount, v_op_currency, v_op_state,
               v_op_detail
          FROM operations
         WHERE client_id = p_client_id AND ns = 'wire' AND ext_id = p_ext_id COLLATE "default"
           FOR UPDATE;
        v_found := FOUND;
        IF NOT v_found AND p_call = 'rollback' THEN
            -- (None, ROLLBACK): a tombstone, unless a concurrent call claimed the id first.
            INSERT INTO operations (client_id, ns, ext_id, kind, player_id, currency,
                                    amount_minor, free_minor, state, created_at_ms,
                                    updated_at_ms, detail)
            VALUES (p_client_id, 'wire', p_ext_id, p_kind, v_player, v_currency, 0, 0,
                    'rolled_back', p_now_ms, p_now_ms, p_tomb_detail)
            ON CONFLICT (client_id, ns, ext_id) DO NOTHING
            RETURNING id INTO v_op_id;
            IF v_op_id IS NOT NULL THEN
                v_after := v_available;
                EXIT apply;
            END IF;
            SELECT id, kind, player_id, amount_minor, currency, state, detail
              INTO v_op_id, v_op_kind, v_op_player, v_op_amount, v_op_currency, v_op_state,
                   v_op_detail
              FROM operations
             WHERE client_id = p_client_id AND ns = 'wire' AND ext_id = p_ext_id COLLATE "default"
               FOR UPDATE;
            v_found := FOUND;
            IF NOT v_found THEN
                RAISE EXCEPTION 'gamewallet: a claimed operation id vanished';
            END IF;
        END IF;
        IF v_found THEN
            -- _check_same
            IF v_op_kind <> p_kind OR v_op_player <> v_player THEN
                o_code := 'ID_REUSED'; o_detail := 'the id belongs to another operation';
                RETURN;
            END IF;
            IF p_amount IS NOT NULL
               AND coalesce((v_op_detail::json -> 'tombstone')::text
                            NOT IN ('false', 'null', '0', '""', '[]', '{}'), false) IS FALSE
               AND (v_op_amount <> p_amount OR v_op_currency <> p_currency) THEN
                o_code := 'ID_REUSED';
                o_detail := 'amount or currency differs from the original';
                RETURN;
            END IF;
        END IF;
        -- core.states.TABLE
        IF NOT v_found THEN
            IF p_call = 'confirm' THEN o_code := 'NOT_FOUND'; RETURN; END IF;
            RAISE EXCEPTION 'gamewallet: an unknown id either opens, is refused or is tombstoned';
        ELSIF v_op_state IN ('held', 'pending') THEN
            v_effect := CASE p_call WHEN 'open' THEN 'replay' WHEN 'confirm' THEN 'post'
                                    ELSE 'void' END;
            v_next := CASE p_call WHEN 'confirm' THEN 'confirmed' ELSE 'rolled_back' END;
        ELSIF v_op_state = 'confirmed' THEN
            IF p_call = 'rollback' THEN o_code := 'ALREADY_FINALIZED'; RETURN; END IF;
            v_effect := 'replay';
        ELSIF v_op_state = 'rolled_back' THEN
            IF p_call = 'open' THEN o_code := 'ALREADY_ROLLED_BACK'; RETURN; END IF;
            IF p_call = 'confirm' THEN o_code := 'ALREADY_FINALIZED'; RETURN; END IF;
            v_effect := 'replay';
        ELSIF v_op_state = 'completed' THEN
            IF p_call <> 'open' THEN o_code := 'ALREADY_FINALIZED'; RETURN; END IF;
            v_effect := 'replay';
        ELSE
            RAISE EXCEPTION 'gamewallet: unknown operation state %', v_op_state;
        END IF;
        IF v_effect = 'replay' THEN
            v_after := v_available;
            EXIT apply;
        END IF;
        -- The note merge below appends one member; anything else is left to the generic path
        -- (nothing has been written yet).
        IF p_note_member IS NOT NULL AND EXISTS (
            SELECT 1 FROM json_object_keys(v_op_detail::json) AS k
             WHERE k COLLATE "C" >= p_note_min_key COLLATE "C") THEN
            o_status := 'generic'; RETURN;
        END IF;
        IF v_effect = 'post' THEN
            -- service.common.move: the player gets v_gets, the client's shard the opposite.
            v_gets := CASE p_kind WHEN 'withdraw' THEN -v_op_amount ELSE v_op_amount END;
            IF p_credit_limit IS NOT NULL AND v_gets > 0 THEN
                SELECT coalesce(sum(posted_minor), 0) INTO v_total FROM (
                    SELECT posted_minor FROM accounts
                     WHERE owner_kind = 'client' AND owner_id = p_client_id
                       AND currency = v_currency AND bucket = 'cash'
                       AND shard >= 0 AND shard < p_shards
                     ORDER BY shard FOR UPDATE) AS s;
                IF v_total - v_gets < -p_credit_limit THEN
                    o_code := 'CREDIT_LIMIT_EXCEEDED'; RETURN;
                END IF;
            END IF;
            v_shard := (v_player % p_shards)::integer;
            SELECT id INTO v_client_acct FROM accounts
             WHERE owner_kind = 'client' AND owner_id = p_client_id AND currency = v_currency
               AND bucket = 'cash' AND shard = v_shard
               FOR UPDATE;
            IF NOT FOUND THEN
                INSERT INTO accounts (owner_kind, owner_id, currency, bucket, shard,
                                      no_overdraft)
                VALUES ('client', p_client_id, v_currency, 'cash', v_shard, false)
                ON CONFLICT (owner_kind, owner_id, currency, bucket, shard) DO NOTHING;
                SELECT id INTO v_client_acct FROM accounts
                 WHERE owner_kind = 'client' AND owner_id = p_client_id
                   AND currency = v_currency AND bucket = 'cash' AND shard = v_shard
                   FOR UPDATE;
            END IF;
            UPDATE accounts
               SET posted_minor = posted_minor + v_gets,
                   held_minor = held_minor
                       - CASE WHEN p_kind = 'withdraw' THEN v_op_amount ELSE 0 END,
                   pending_minor = pending_minor
                       - CASE WHEN p_kind = 'deposit' THEN v_op_amount ELSE 0 END
             WHERE id = v_cash;
            UPDATE accounts SET posted_minor = posted_minor - v_gets WHERE id = v_client_acct;
            INSERT INTO postings (operation_id, account_id, currency, amount_minor,
                                  created_at_ms)
            VALUES (v_op_id, v_cash, v_currency, v_gets, p_now_ms),
                   (v_op_id, v_client_acct, v_currency, -v_gets, p_now_ms);
            v_after := CASE p_kind WHEN 'withdraw' THEN v_available
                                   ELSE v_available + v_op_amount END;
        ELSE
            -- VOID: release the hold or drop the pending credit; nothing is posted.
            IF p_kind = 'withdraw' THEN
                UPDATE accounts SET held_minor = held_minor - v_op_amount WHERE id = v_cash;
                v_after := v_available + v_op_amount;
            ELSE
                UPDATE accounts SET pending_minor = pending_minor - v_op_amount
                 WHERE id = v_cash;
                v_after := v_available;
            END IF;
        END IF;
        IF p_note_member IS NULL THEN
            UPDATE operations SET state = v_next, updated_at_ms = p_now_ms WHERE id = v_op_id;
        ELSE
            UPDATE operations
               SET state = v_next, updated_at_ms = p_now_ms,
                   detail = CASE WHEN v_op_detail = '{}' THEN '{' || p_note_member || '}'
                                 ELSE left(v_op_detail, -1) || ',' || p_note_member || '}' END
             WHERE id = v_op_id;
        END IF;
    END apply;

    -- Render the answer from the caller's template and store it with the fingerprint.
    v_bal := gw_format_minor(v_after);
    o_body := p_body[1]
        || convert_to(CASE WHEN p_balance_first THEN v_bal ELSE v_currency END, 'UTF8')
        || p_body[2]
        || convert_to(CASE WHEN p_balance_first THEN v_currency ELSE v_bal END, 'UTF8')
        || p_body[3];
    INSERT INTO idempotency (client_id, scope, key, fingerprint, response, created_at_ms)
    VALUES (p_client_id, p_endpoint, p_ext_id, v_fp, o_body, p_now_ms)
    ON CONFLICT (client_id, scope, key) DO NOTHING;
    o_status := 'ok';
END
$$"""

# core.money.format_minor with one fraction digit at least (HRG strings): 100000.0, -150.0.
_FORMAT_MINOR1 = """
CREATE OR REPLACE FUNCTION gw_format_minor1(m bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN m < 0 THEN '-' ELSE '' END
        || (abs(m) / 10000)::text || '.'
        || CASE WHEN abs(m) % 10000 = 0 THEN '0'
                ELSE rtrim(lpad((abs(m) % 10000)::text, 4, '0'), '0') END
$$"""

# An HRG answer from its template: p_parts around the holes, p_order saying what fills each
# (1 the signed total, 2 the cash balance after, 3 the free credit after, 4 the currency).
_HRG_RENDER = """
CREATE OR REPLACE FUNCTION gw_hrg_render_v1(
    p_parts bytea[], p_order integer[], p_total bigint, p_cash bigint, p_free bigint,
    p_currency text) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v bytea := p_parts[1];
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_order, 1), 0) LOOP
        v := v || convert_to(CASE p_order[i] WHEN 1 THEN gw_format_minor1(p_total)
                                             WHEN 2 THEN gw_format_minor1(p_cash)
                                             WHEN 3 THEN gw_format_minor1(p_free)
                                             ELSE p_currency END, 'UTF8')
               || p_parts[i + 1];
    END LOOP;
    RETURN v;
END
$$"""

# service.hrg.withdraw / deposit in one statement (same precedence, rows and stored bytes).
_HRG_TRANSFER = """
CREATE OR REPLACE FUNCTION gw_hrg_transfer_v1(
    p_client_id bigint, p_kind text, p_user_id text, p_user_json text, p_code text,
    p_all boolean, p_cash bigint, p_free bigint, p_fp text, p_now_ms bigint,
    p_max_amount bigint, p_max_minor bigint, p_credit_limit bigint, p_shards integer,
    p_parts bytea[], p_order integer[],
    OUT o_status text, OUT o_code text, OUT o_detail text, OUT o_body bytea)
LANGUAGE plpgsql AS $$
DECLARE
    v_player bigint; v_currency text; v_cash_acct bigint; v_free_acct bigint;
    v_c_posted bigint; v_c_held bigint; v_f_posted bigint; v_f_held bigint;
    v_st_fp text; v_st_body bytea;
    v_op_id bigint; v_op_kind text; v_op_amount bigint; v_op_free bigint; v_op_currency text;
    v_op_detail text; v_sign bigint; v_cash bigint; v_free bigint; v_total bigint;
    v_shard integer; v_client_cash bigint; v_client_free bigint; v_after_cash bigint;
    v_after_free bigint;
BEGIN
    o_status := 'error';
    -- get_player(lock=True)
    SELECT p.id, p.currency, c.id, c.posted_minor, c.held_minor, f.id, f.posted_minor,
           f.held_minor
      INTO v_player, v_currency, v_cash_acct, v_c_posted, v_c_held, v_free_acct, v_f_posted,
           v_f_held
      FROM players p
      JOIN accounts c ON c.owner_kind = 'player' AND c.owner_id = p.id
                     AND c.currency = p.currency AND c.bucket = 'cash' AND c.shard = 0
      JOIN accounts f ON f.owner_kind = 'player' AND f.owner_id = p.id
                     AND f.currency = p.currency AND f.bucket = 'free' AND f.shard = 0
     WHERE p.client_id = p_client_id AND p.external_id = p_user_id COLLATE "default"
       FOR UPDATE OF p, c, f;
    IF NOT FOUND THEN
        o_code := 'PLAYER_NOT_FOUND'; o_detail := 'no player ' || p_user_id; RETURN;
    END IF;
    -- _replay: the stored answer, else the operation itself.
    SELECT fingerprint, response INTO v_st_fp, v_st_body FROM idempotency
     WHERE client_id = p_client_id AND scope = 'hrg:transfer' AND key = p_code COLLATE "default";
    IF FOUND THEN
        IF v_st_fp <> p_fp THEN o_code := 'ID_REUSED'; RETURN; END IF;
        o_status := 'ok'; o_body := v_st_body; RETURN;
    END IF;
    SELECT id, kind, amount_minor, free_minor, currency, detail
      INTO v_op_id, v_op_kind, v_op_amount, v_op_free, v_op_currency, v_op_detail
      FROM operations
     WHERE client_id = p_client_id AND ns = 'wire' AND ext_id = p_code COLLATE "default";
    IF NOT FOUND THEN
        v_op_id := NULL;
        -- The refusals of withdraw / deposit, in their order.
        IF p_kind = 'withdraw' THEN
            v_sign := -1;
            IF p_all THEN
                v_cash := v_c_posted - v_c_held; v_free := v_f_posted - v_f_held;
            ELSE
                v_cash := p_cash; v_free := p_free;
                IF v_cash > p_max_amount OR v_free > p_max_amount THEN
                    o_code := 'LIMIT_EXCEEDED'; RETURN;
                END IF;
                IF v_cash > v_c_posted - v_c_held THEN
                    o_code := 'INSUFFICIENT_FUNDS'; RETURN;
                END IF;
                IF v_free > v_f_posted - v_f_held THEN
                    o_code := 'INSUFFICIENT_FREE_CREDIT'; RETURN;
                END IF;
            END IF;
        ELSE
            v_sign := 1; v_cash := p_cash; v_free := p_free;
            IF v_cash > p_max_amount OR v_free > p_max_amount THEN
                o_code := 'LIMIT_EXCEEDED'; RETURN;
            END IF;
            IF v_c_posted + v_cash > p_max_minor OR v_f_posted + v_free > p_max_minor THEN
                o_code := 'BALANCE_LIMIT_EXCEEDED'; RETURN;
            END IF;
        END IF;
        -- _transfer: claim the code with the record the query endpoints read.
        v_after_cash := v_c_posted + v_sign * v_cash;
        v_after_free := v_f_posted + v_sign * v_free;
        INSERT INTO operations (client_id, ns, ext_id, kind, player_id, currency, amount_minor,
                                free_minor, state, created_at_ms, updated_at_ms, detail)
        VALUES (p_client_id, 'wire', p_code, p_kind, v_player, v_currency, v_cash, v_free,
                'completed', p_now_ms, p_now_ms,
                '{"afterBalance":' || v_after_cash || ',"afterFreeCredit":' || v_after_free
                || ',"fingerprint":"' || p_fp || '","preBalance":' || v_c_posted
                || ',"preFreeCredit":' || v_f_posted || ',"userId":' || p_user_json || '}')
        ON CONFLICT (client_id, ns, ext_id) DO NOTHING
        RETURNING id INTO v_op_id;
        IF v_op_id IS NULL THEN
            -- Claimed meanwhile by a transfer of another player: judge against it.
            SELECT id, kind, amount_minor, free_minor, currency, detail
              INTO v_op_id, v_op_kind, v_op_amount, v_op_free, v_op_currency, v_op_detail
              FROM operations
             WHERE client_id = p_client_id AND ns = 'wire' AND ext_id = p_code COLLATE "default";
            IF NOT FOUND THEN
                RAISE EXCEPTION 'gamewallet: an operation id is claimed but not stored';
            END IF;
        END IF;
    END IF;
    IF v_op_kind IS NOT NULL THEN
        -- _replay_operation: the same request rebuilds the same answer from the record.
        IF (v_op_detail::json ->> 'fingerprint') IS DISTINCT FROM p_fp THEN
            o_code := 'ID_REUSED'; RETURN;
        END IF;
        IF v_op_kind NOT IN ('deposit', 'withdraw') THEN
            RAISE EXCEPTION 'gamewallet: not an HRG transfer';
        END IF;
        o_body := gw_hrg_render_v1(
            p_parts, p_order,
            CASE WHEN v_op_kind = 'withdraw' THEN -1 ELSE 1 END * (v_op_amount + v_op_free),
            (v_op_detail::json ->> 'afterBalance')::bigint,
            (v_op_detail::json ->> 'afterFreeCredit')::bigint, v_op_currency);
        o_status := 'ok'; RETURN;
    END IF;
    -- service.common.move: cash bucket first (credit limit), then free credit.
    v_shard := (v_player % p_shards)::integer;
    IF v_cash <> 0 THEN
        IF p_credit_limit IS NOT NULL AND v_sign * v_cash > 0 THEN
            SELECT coalesce(sum(posted_minor), 0) INTO v_total FROM (
                SELECT posted_minor FROM accounts
                 WHERE owner_kind = 'client' AND owner_id = p_client_id
                   AND currency = v_currency AND bucket = 'cash'
                   AND shard >= 0 AND shard < p_shards
                 ORDER BY shard FOR UPDATE) AS s;
            IF v_total - v_sign * v_cash < -p_credit_limit THEN
                DELETE FROM operations WHERE id = v_op_id;
                o_code := 'CREDIT_LIMIT_EXCEEDED'; RETURN;
            END IF;
        END IF;
        v_client_cash := gw_client_shard_v1(p_client_id, v_currency, 'cash', v_shard);
    END IF;
    IF v_free <> 0 THEN
        v_client_free := gw_client_shard_v1(p_client_id, v_currency, 'free', v_shard);
    END IF;
    IF v_cash <> 0 THEN
        UPDATE accounts SET posted_minor = posted_minor + v_sign * v_cash WHERE id = v_cash_acct;
        UPDATE accounts SET posted_minor = posted_minor - v_sign * v_cash
         WHERE id = v_client_cash;
        INSERT INTO postings (operation_id, account_id, currency, amount_minor, created_at_ms)
        VALUES (v_op_id, v_cash_acct, v_currency, v_sign * v_cash, p_now_ms),
               (v_op_id, v_client_cash, v_currency, -v_sign * v_cash, p_now_ms);
    END IF;
    IF v_free <> 0 THEN
        UPDATE accounts SET posted_minor = posted_minor + v_sign * v_free WHERE id = v_free_acct;
        UPDATE accounts SET posted_minor = posted_minor - v_sign * v_free
         WHERE id = v_client_free;
        INSERT INTO postings (operation_id, account_id, currency, amount_minor, created_at_ms)
        VALUES (v_op_id, v_free_acct, v_currency, v_sign * v_free, p_now_ms),
               (v_op_id, v_client_free, v_currency, -v_sign * v_free, p_now_ms);
    END IF;
    o_body := gw_hrg_render_v1(p_parts, p_order, v_sign * (v_cash + v_free), v_after_cash,
                               v_after_free, v_currency);
    INSERT INTO idempotency (client_id, scope, key, fingerprint, response, created_at_ms)
    VALUES (p_client_id, 'hrg:transfer', p_code, p_fp, o_body, p_now_ms)
    ON CONFLICT (client_id, scope, key) DO NOTHING;
    o_status := 'ok';
END
$$"""

# The id of a client's account shard row, locked, created on first use (GetOwnerAccounts).
_CLIENT_SHARD = """
CREATE OR REPLACE FUNCTION gw_client_shard_v1(
    p_client_id bigint, p_currency text, p_bucket text, p_shard integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    SELECT id INTO v_id FROM accounts
     WHERE owner_kind = 'client' AND owner_id = p_client_id AND currency = p_currency
       AND bucket = p_bucket AND shard = p_shard
       FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO accounts (owner_kind, owner_id, currency, bucket, shard, no_overdraft)
        VALUES ('client', p_client_id, p_currency, p_bucket, p_shard, false)
        ON CONFLICT (owner_kind, owner_id, currency, bucket, shard) DO NOTHING;
        SELECT id INTO v_id FROM accounts
         WHERE owner_kind = 'client' AND owner_id = p_client_id AND currency = p_currency
           AND bucket = p_bucket AND shard = p_shard
           FOR UPDATE;
    END IF;
    RETURN v_id;
END
$$"""

# service.jdb.transfer (action 19) in one statement. A player who left a game less than the
# longest cooldown ago is handed to the generic path (its cooldown table is Python's).
_JDB_TRANSFER = """
CREATE OR REPLACE FUNCTION gw_jdb_transfer_v1(
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
    v_total bigint; v_client_cash bigint;
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
    -- service.common.move(cash_minor=signed)
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
    v_client_cash := gw_client_shard_v1(p_client_id, v_currency, 'cash',
                                        (o_player % p_shards)::integer);
    UPDATE accounts SET posted_minor = posted_minor + o_signed WHERE id = v_cash_acct;
    UPDATE accounts SET posted_minor = posted_minor - o_signed WHERE id = v_client_cash;
    INSERT INTO postings (operation_id, account_id, currency, amount_minor, created_at_ms)
    VALUES (o_op_id, v_cash_acct, v_currency, o_signed, p_now_ms),
           (o_op_id, v_client_cash, v_currency, -o_signed, p_now_ms);
    -- service.common.client_balance: the agent's shards (missing ones are created empty).
    INSERT INTO accounts (owner_kind, owner_id, currency, bucket, shard, no_overdraft)
    SELECT 'client', p_client_id, v_currency, 'cash', s, false
      FROM generate_series(0, p_shards - 1) AS s
     WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE owner_kind = 'client'
                          AND owner_id = p_client_id AND currency = v_currency
                          AND bucket = 'cash' AND shard = s)
    ON CONFLICT (owner_kind, owner_id, currency, bucket, shard) DO NOTHING;
    SELECT coalesce(sum(posted_minor), 0) INTO o_agent FROM accounts
     WHERE owner_kind = 'client' AND owner_id = p_client_id AND currency = v_currency
       AND bucket = 'cash' AND shard >= 0 AND shard < p_shards;
    o_currency := v_currency;
    o_status := 'ok';
END
$$"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite keeps the generic path (its writer thread already batches commits)
    op.execute(_FORMAT_MINOR)
    op.execute(_SEAMLESS_CALL)
    op.execute(_FORMAT_MINOR1)
    op.execute(_HRG_RENDER)
    op.execute(_CLIENT_SHARD)
    op.execute(_HRG_TRANSFER)
    op.execute(_JDB_TRANSFER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "DROP FUNCTION IF EXISTS gw_seamless_call_v1(bigint, text, text, text, text, text,"
        " bigint, text, bigint, bigint, bigint, bigint, bigint, integer, text, text, text,"
        " text, text, text, bytea[], boolean)"
    )
    op.execute(
        "DROP FUNCTION IF EXISTS gw_hrg_transfer_v1(bigint, text, text, text, text, boolean,"
        " bigint, bigint, text, bigint, bigint, bigint, bigint, integer, bytea[], integer[])"
    )
    op.execute(
        "DROP FUNCTION IF EXISTS gw_jdb_transfer_v1(bigint, text, text, text, text, bigint,"
        " boolean, text, bigint, bigint, bigint, bigint, integer)"
    )
    op.execute("DROP FUNCTION IF EXISTS gw_client_shard_v1(bigint, text, text, integer)")
    op.execute(
        "DROP FUNCTION IF EXISTS gw_hrg_render_v1(bytea[], integer[], bigint, bigint, bigint, text)"
    )
    op.execute("DROP FUNCTION IF EXISTS gw_format_minor1(bigint)")
    op.execute("DROP FUNCTION IF EXISTS gw_format_minor(bigint)")

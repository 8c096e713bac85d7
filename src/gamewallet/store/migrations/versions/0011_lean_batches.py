"""PostgreSQL group commit: less work per call around the per-call function.

Measured with ``valgrind --tool=callgrind`` on ``postgres --single`` (instructions, which do
not drift with the host's speed; docs/performance.md, "The sixth round"): a withdraw or a
confirmation costs 1.23 million instructions inside ``gw_seamless_call_v1`` called alone, and
1.46 million per call inside a batch of 16 through ``gw_seamless_batch_v2``. A fifth of a
call's work in a batch was the batch's own. Two parts of it go:

1. ``gw_lock_players_v1`` locks the batch's player rows only, in id order, not their cash and
   free-credit accounts. The up-front locks exist so that two batches over the same players
   cannot deadlock: they take the players in one order before anything else. The accounts
   add nothing to that: every statement that locks or writes a player's account holds the
   player row first (the per-call functions lock ``p, c, f`` in that order in one statement;
   the generic use cases take ``GetPlayer(lock=True)`` before any ``Apply``;
   store/ops.py names the order), so once a batch holds a player no other transaction can
   hold, or be waiting for, that player's accounts. The per-call function then locks them
   itself, uncontended, where before it re-locked rows the batch already held. One index
   look-up and two row locks of a three-way join per player less: −0.10 million instructions
   per call.
2. ``gw_seamless_batch_v2`` calls ``gw_seamless_call_v1`` as a PL/pgSQL expression
   (``v_answer := gw_seamless_call_v1(…)``) instead of ``SELECT … FROM
   gw_seamless_call_v1(…) AS c``. An expression without a sub-query is evaluated directly;
   the ``SELECT`` started an executor with a function scan for every call. The body template
   goes in as ``ARRAY[p_body[i][1], p_body[i][2], p_body[i][3]]``, the three parts the
   function reads, instead of a sub-query over the row's slice (a sub-query would make the
   call a full statement again). −0.12 million instructions per call.

Together: 1.46 → 1.25 million instructions per call in a batch of 16 (−15 %). Same
signatures, same rows, answers and order of calls; the batch's one subtransaction and its
fallback to ``gw_seamless_batch_v1`` (one subtransaction per call) are as in migration 0009.
HRG's and JDB's batches keep their call statements (their body templates have a variable
number of parts) and get part 1 through the shared ``gw_lock_players_v1``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21
"""

from __future__ import annotations

import importlib
from types import ModuleType

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _migration(name: str) -> ModuleType:
    """An earlier migration (a module name that starts with a digit is not importable by an
    import statement)."""
    return importlib.import_module(f"gamewallet.store.migrations.versions.{name}")


_LOCK_PLAYERS = """
CREATE OR REPLACE FUNCTION gw_lock_players_v1(p_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    -- The player rows, in id order, one indexed statement each. Their accounts are locked
    -- by each call (player first): nobody can hold them while the player row is ours.
    FOR v_id IN SELECT DISTINCT u FROM unnest(p_ids) AS u WHERE u IS NOT NULL ORDER BY u LOOP
        PERFORM 1 FROM players WHERE id = v_id FOR UPDATE;
    END LOOP;
END
$$"""

# The call statement of migration 0009's generated batch, and what replaces it.
_CALL_AS_SELECT = """            SELECT c.o_status, c.o_code, c.o_detail, c.o_body
              INTO o_status, o_code, o_detail, o_body
              FROM {call} AS c;"""
_CALL_AS_EXPRESSION = """            v_answer := {call};
            o_status := v_answer.o_status; o_code := v_answer.o_code;
            o_detail := v_answer.o_detail; o_body := v_answer.o_body;"""
_BODY_BY_SUBQUERY = "ARRAY(SELECT unnest(p_body[i:i][:]))"
_BODY_BY_ELEMENTS = "ARRAY[p_body[i][1], p_body[i][2], p_body[i][3]]"
_DECLARED = "v_tried boolean := false;"


def _seamless_batch(expression: bool) -> str:
    """``gw_seamless_batch_v2`` as migration 0009 made it, or with the call as an expression."""
    m = _migration("0009_batch_one_subtransaction")
    text: str = m._batch_function(
        "gw_seamless_batch_v2",
        m._SEAMLESS_ARGS,
        m._BODY_OUT,
        "p_token",
        m._SEAMLESS_PLAYER,
        m._SEAMLESS_CALL,
    )
    if not expression:
        return text
    select = _CALL_AS_SELECT.format(call=m._SEAMLESS_CALL)
    # Each piece is there exactly once (the generator is frozen: a miss is a bug here).
    assert m._SEAMLESS_CALL.count(_BODY_BY_SUBQUERY) == 1
    assert text.count(select) == 1
    assert text.count(_DECLARED) == 1
    call = m._SEAMLESS_CALL.replace(_BODY_BY_SUBQUERY, _BODY_BY_ELEMENTS)
    text = text.replace(select, _CALL_AS_EXPRESSION.format(call=call))
    return text.replace(_DECLARED, _DECLARED + " v_answer record;")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's writer thread already commits many calls at once
    op.execute(_LOCK_PLAYERS)
    op.execute(_seamless_batch(expression=True))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_migration("0007_group_commit")._LOCK_PLAYERS)
    op.execute(_seamless_batch(expression=False))

"""Migration 0012 drops ``postings_account`` on both databases and puts it back going down.

The index was never read by a query (every read reaches postings by operation, or scans them
all); what the tests here pin is that the head schema does not have it, that the way down
restores it, and that the ledger's checks still catch a posting on the wrong account without it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
from alembic import command

from gamewallet.store import migrate
from gamewallet.store.audit import run_audit
from gamewallet.store.migrate import alembic_config


def _sqlite_indexes(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'postings'"
        ).fetchall()
    finally:
        conn.close()
    return {name for (name,) in rows}


def test_sqlite_head_has_no_postings_account_index_and_down_restores_it(tmp_path: Path) -> None:
    path = tmp_path / "wallet.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    assert _sqlite_indexes(path) == {"postings_operation"}
    command.downgrade(alembic_config(url), "0011")
    assert _sqlite_indexes(path) == {"postings_operation", "postings_account"}
    migrate.upgrade(url)
    assert _sqlite_indexes(path) == {"postings_operation"}


def test_sqlite_audit_still_finds_a_balance_its_postings_do_not_explain(tmp_path: Path) -> None:
    """The per-account sums scan postings; without the index they still see every row."""
    path = tmp_path / "wallet.db"
    migrate.upgrade(f"sqlite:///{path}")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(
            """
            INSERT INTO clients (id, protocol, name, shards, created_at_ms)
                VALUES (1, 'seamless', 'c', 1, 0);
            INSERT INTO players (id, client_id, external_id, currency, created_at_ms)
                VALUES (1, 1, 'p', 'EUR', 0);
            INSERT INTO accounts (id, owner_kind, owner_id, currency, bucket, posted_minor,
                                  no_overdraft)
                VALUES (1, 'player', 1, 'EUR', 'cash', 5, 1),
                       (2, 'client', 1, 'EUR', 'cash', -5, 0),
                       (3, 'player', 1, 'EUR', 'free', 0, 1);
            INSERT INTO operations (id, client_id, ns, ext_id, kind, player_id, currency,
                                    amount_minor, state, created_at_ms, updated_at_ms)
                VALUES (1, 1, 'wire', 'x', 'deposit', 1, 'EUR', 5, 'completed', 0, 0);
            -- balanced, but the player's 5 landed on the free-credit account
            INSERT INTO postings (operation_id, account_id, currency, amount_minor, created_at_ms)
                VALUES (1, 3, 'EUR', 5, 0), (1, 2, 'EUR', -5, 0);
            """
        )
        found = run_audit(lambda sql: conn.execute(sql).fetchall())
    finally:
        conn.close()
    assert any(
        line.startswith("account 1: posted balance 5 but its postings sum to 0") for line in found
    ), found
    assert any(
        line.startswith("account 3: posted balance 0 but its postings sum to 5") for line in found
    ), found


async def _pg_indexes(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'postings'")
    finally:
        await conn.close()
    return {r["indexname"] for r in rows}


async def test_postgres_head_has_no_postings_account_index_and_down_restores_it(
    pg_url: str,
) -> None:
    assert await _pg_indexes(pg_url) == {"postings_pkey", "postings_operation"}
    await asyncio.to_thread(command.downgrade, alembic_config(pg_url), "0011")
    assert await _pg_indexes(pg_url) == {"postings_pkey", "postings_operation", "postings_account"}
    await asyncio.to_thread(migrate.upgrade, pg_url)
    assert await _pg_indexes(pg_url) == {"postings_pkey", "postings_operation"}

"""Helpers of the SQLite differential tests: two database files set up alike, one served by
the fast path and one by the generic path, compared row by row."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

from gamewallet.store.records import ClientRecord

#: The ledger tables a wallet call (or the setup) writes, each with a stable order.
LEDGER_TABLES = {
    "clients": "id",
    "players": "id",
    "accounts": "id",
    "operations": "id",
    "postings": "id",
    "sessions": "token",
    "idempotency": "client_id, scope, key",
}


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ledger table, ids included (committed data: WAL readers see it)."""
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()  # noqa: S608 - constant names
            for table, order in LEDGER_TABLES.items()
        }
    finally:
        conn.close()


def with_shards(path: Path, client: ClientRecord, shards: int) -> ClientRecord:
    """``client`` split into ``shards`` account rows. No use case changes a client's shards;
    a credit limit on several rows exercises move()'s "lock and sum every shard" branch."""
    if client.shards == shards:
        return client
    side = sqlite3.connect(path)
    with side:
        side.execute("UPDATE clients SET shards = ? WHERE id = ?", (shards, client.id))
    side.close()
    return dataclasses.replace(client, shards=shards)

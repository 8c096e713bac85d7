"""Stores: the Store port and its adapters (memory, SQLite, PostgreSQL).

:func:`open_store` picks the adapter from the database URL; nothing is opened until
``await store.start()``.
"""

from __future__ import annotations

from gamewallet.store.port import Store


def open_store(
    url: str,
    *,
    pool_size: int = 4,
    command_timeout_s: float = 10.0,
    pg_batch_max: int = 1,
    sqlite_fast_path: bool = True,
    sqlite_synchronous: str = "FULL",
) -> Store:
    """The store for ``url``: ``sqlite:///path``, ``postgresql://…`` or ``memory://``.

    ``command_timeout_s`` bounds one PostgreSQL statement: short for the servers' hot path,
    long for operator commands such as the audit of a large ledger. ``pg_batch_max`` > 1 lets
    PostgreSQL's fast path send that many concurrent wallet calls as one transaction.
    ``sqlite_fast_path`` runs SQLite's hot wallet calls as plain functions on its writer
    thread (store/sqlite_fastpath.py) instead of their generic use cases.
    ``sqlite_synchronous`` is SQLite's ``PRAGMA synchronous`` (OFF, NORMAL, FULL or EXTRA);
    any other value raises ValueError here, before anything is opened.
    """
    if url.startswith("memory:"):
        from gamewallet.store.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:///"):
        from gamewallet.store.sqlite import SqliteStore

        return SqliteStore(url, fast_path=sqlite_fast_path, synchronous=sqlite_synchronous)
    if url.startswith(("postgresql://", "postgres://")):
        # PostgresStore plus the one-round-trip fast path (migration 0005) when present.
        from gamewallet.store.pg_fastpath import FastPostgresStore

        return FastPostgresStore(
            url, max_size=pool_size, command_timeout_s=command_timeout_s, batch_max=pg_batch_max
        )
    raise ValueError(f"unsupported database URL: {url.split(':', 1)[0]}:…")

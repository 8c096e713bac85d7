"""Stores: the Store port and its adapters (memory, SQLite, PostgreSQL).

:func:`open_store` picks the adapter from the database URL; nothing is opened until
``await store.start()``.
"""

from __future__ import annotations

from gamewallet.store.port import Store


def open_store(url: str, *, pool_size: int = 4) -> Store:
    """The store for ``url``: ``sqlite:///path``, ``postgresql://…`` or ``memory://``."""
    if url.startswith("memory:"):
        from gamewallet.store.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:///"):
        from gamewallet.store.sqlite import SqliteStore

        return SqliteStore(url)
    if url.startswith(("postgresql://", "postgres://")):
        from gamewallet.store.postgres import PostgresStore

        return PostgresStore(url, max_size=pool_size)
    raise ValueError(f"unsupported database URL: {url.split(':', 1)[0]}:…")

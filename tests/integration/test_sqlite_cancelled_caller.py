"""The SQLite store survives callers that give up: a use case whose caller was cancelled
before the writer thread reached it is skipped, and every later use case still runs.

Found by the simulator's timeout fault against the in-process app: the cancelled caller's
future made the writer thread die, and every request after it waited forever.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from gamewallet.store import ops
from gamewallet.store.port import UseCase, do
from gamewallet.store.sqlite import SqliteStore


def blocked_until(event: threading.Event, key: str) -> UseCase[str]:
    """Holds the writer thread until ``event`` is set, then writes ``key``."""
    assert event.wait(timeout=10), "the test never released the writer"
    return (yield from do(ops.SetMetaIfAbsent(key, "first")))


async def test_a_cancelled_caller_does_not_stop_the_writer(tmp_path: Path) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path}/gw.db")
    await store.start()
    try:
        release = threading.Event()
        first = asyncio.ensure_future(store.run(blocked_until(release, "a")))
        await asyncio.sleep(0.05)  # the writer thread is now inside the first use case
        abandoned = asyncio.ensure_future(store.run(do(ops.SetMetaIfAbsent("b", "never"))))
        await asyncio.sleep(0.05)
        abandoned.cancel()
        release.set()
        assert await first == "first"
        assert abandoned.cancelled()
        later = await asyncio.wait_for(store.run(do(ops.SetMetaIfAbsent("c", "later"))), 5)
        assert later == "later"
        assert await store.run(do(ops.GetMeta("b"))) is None  # the abandoned one never ran
    finally:
        await store.close()

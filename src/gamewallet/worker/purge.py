"""Idempotency purge: drop stored answers older than the retention window (protocols.md 1.4).

Only ``idempotency`` rows go, in bounded batches (one database transaction each, so a purge
never holds locks for long); operations and postings, the ledger's history, are never touched.
A run keeps going while batches come back full, up to :data:`ROUNDS_MAX` batches, so that the
purge keeps pace with a busy wallet without one run lasting unboundedly long.
"""

from __future__ import annotations

from typing import Final

from gamewallet.service.common import Clock
from gamewallet.store import ops
from gamewallet.store.port import Store, do

#: Most batches one run deletes; the rest waits for the next run.
ROUNDS_MAX: Final = 100


class IdempotencyPurge:
    """A worker job: delete idempotency records older than ``retention_s``."""

    name = "purge"

    def __init__(self, store: Store, clock: Clock, *, retention_s: int, batch_size: int) -> None:
        assert retention_s > 0, "a retention window"
        assert batch_size >= 1, "a batch deletes something"
        self.store = store
        self.clock = clock
        self.retention_ms = retention_s * 1000
        self.batch_size = batch_size

    async def run_once(self) -> int:
        """Delete expired records, a batch at a time; how many were deleted."""
        total = 0
        for _ in range(ROUNDS_MAX):
            before_ms = self.clock.now_ms() - self.retention_ms
            deleted = await self.store.run(do(ops.PurgeIdempotency(before_ms, self.batch_size)))
            total += deleted
            if deleted < self.batch_size:
                break
        return total

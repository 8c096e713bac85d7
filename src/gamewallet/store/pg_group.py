"""Group commit for the PostgreSQL fast path: concurrent calls share one transaction.

A :class:`Lane` sends the calls of one per-call function of migration 0005. A call that finds
fewer than ``flights_max`` statements of its lane in flight goes at once, alone, on the
per-call function: with one call at a time nothing changes, not even a task switch. Calls that
arrive while the lane is busy wait; as soon as a statement of the lane returns, everything that
waited (up to ``batch_max`` calls) goes as one statement of the lane's batch function (migration
0007): one round trip, one transaction, one commit and one WAL flush for all of them. Nothing
ever waits on a timer to fill a batch.

Invariants:

* A caller gets its row only once the statement that produced it has returned, that is once its
  transaction has committed: nothing is acknowledged before it is durable.
* A call the batch did not run (its subtransaction failed, ``o_status = 'retry'``; or the whole
  batch was a deadlock victim or failed to serialize, so none of it committed) is sent again
  alone; the per-call function then gives exactly its per-call answer, or error.
* Any other failure of a batch statement (connection lost, timeout) is a StoreError for each of
  its calls, as it would have been for a call sent alone; never a retry, since the batch may
  have committed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from gamewallet.store.port import StoreError
from gamewallet.store.postgres import _DRIVER_ERRORS, _store_error

Row = asyncpg.Record

#: Most calls one batch may hold: each call that writes takes a subtransaction id, and past 64
#: in one transaction PostgreSQL's per-session cache of them overflows (every snapshot of every
#: session then gets slower).
BATCH_LIMIT = 64

#: Failures after which nothing of the batch committed, so that each call can be sent again.
_ROLLED_BACK = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


class Lane:
    """The calls of one per-call function: its SQL, its batch SQL, and who waits for it."""

    __slots__ = ("batch", "flying", "single", "waiting")

    def __init__(self, single: str, batch: str | None) -> None:
        self.single = single
        #: None when the database has no batch function (before migration 0007).
        self.batch = batch
        self.waiting: list[tuple[tuple[Any, ...], asyncio.Future[Row | None]]] = []
        self.flying = 0


class GroupCommit:
    """Sends the calls of its lanes alone or in batches, over one connection pool."""

    def __init__(
        self,
        pool: asyncpg.Pool[Row],
        *,
        batch_max: int,
        flights_max: int,
        timeout_s: float,
    ) -> None:
        assert 1 <= batch_max <= BATCH_LIMIT, "batch size"
        assert flights_max >= 1
        self._pool = pool
        self.batch_max = batch_max
        self.flights_max = flights_max
        self._timeout_s = timeout_s
        self._tasks: set[asyncio.Task[None]] = set()
        #: Batch statements sent, the calls they ran, and the calls sent on their own
        #: statement (for tests and /metrics).
        self.batched_calls = 0
        self.batches = 0
        self.single_calls = 0

    async def row(self, lane: Lane, args: tuple[Any, ...]) -> Row:
        """The per-call function's row for ``args``, once its transaction has committed.

        Raises StoreError (the database failed) or AssertionError (a CHECK refused a broken
        invariant), exactly as the per-call function alone would.
        """
        if lane.batch is None or self.batch_max == 1:
            return await self.alone(lane.single, args)
        if lane.flying < self.flights_max and not lane.waiting:
            lane.flying += 1
            try:
                return await self.alone(lane.single, args)
            finally:
                self._landed(lane)
        future: asyncio.Future[Row | None] = asyncio.get_running_loop().create_future()
        lane.waiting.append((args, future))
        if lane.flying < self.flights_max:
            self._launch(lane)
        row = await future
        if row is None:  # the batch did not run it
            return await self.alone(lane.single, args)
        return row

    async def alone(self, sql: str, args: tuple[Any, ...]) -> Row:
        """One call on its own statement (its own transaction), errors translated."""
        self.single_calls += 1
        try:
            async with self._pool.acquire(timeout=self._timeout_s) as conn:
                row = await conn.fetchrow(sql, *args)
        except asyncpg.CheckViolationError as exc:
            raise AssertionError(
                f"the database refused a broken invariant ({exc.constraint_name})"
            ) from exc
        except _DRIVER_ERRORS as exc:
            raise _store_error(exc) from exc
        assert row is not None
        return row

    async def drain(self) -> None:
        """Wait for the batches in flight (before the pool closes)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _landed(self, lane: Lane) -> None:
        lane.flying -= 1
        if lane.waiting and lane.flying < self.flights_max:
            self._launch(lane)

    def _launch(self, lane: Lane) -> None:
        # A caller cancelled while it waited (its client went away) is not sent at all.
        lane.waiting = [entry for entry in lane.waiting if not entry[1].done()]
        if not lane.waiting:
            return
        batch = lane.waiting[: self.batch_max]
        del lane.waiting[: self.batch_max]
        lane.flying += 1
        task = asyncio.get_running_loop().create_task(self._fly(lane, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fly(
        self, lane: Lane, batch: list[tuple[tuple[Any, ...], asyncio.Future[Row | None]]]
    ) -> None:
        try:
            if len(batch) == 1:
                await self._one(lane, *batch[0])
            else:
                await self._many(lane, batch)
        finally:
            for _, future in batch:  # only if this task itself was cancelled
                if not future.done():
                    future.set_exception(StoreError("the store stopped before the call ran"))
            self._landed(lane)

    async def _one(
        self, lane: Lane, args: tuple[Any, ...], future: asyncio.Future[Row | None]
    ) -> None:
        """A batch of one: the per-call function, no batch overhead."""
        try:
            row = await self.alone(lane.single, args)
        except (StoreError, AssertionError) as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():  # the caller may have gone (cancelled)
            future.set_result(row)

    async def _many(
        self, lane: Lane, batch: list[tuple[tuple[Any, ...], asyncio.Future[Row | None]]]
    ) -> None:
        assert lane.batch is not None
        calls = [args for args, _ in batch]
        rows: list[Row] = []  # none: each call goes again alone
        if _same_shape(calls):  # else they cannot be one set of arrays
            columns = [list(column) for column in zip(*calls, strict=True)]
            self.batches += 1
            try:
                async with self._pool.acquire(timeout=self._timeout_s) as conn:
                    rows = await conn.fetch(lane.batch, *columns)
            except _ROLLED_BACK:
                pass  # nothing of it committed
            except _DRIVER_ERRORS as exc:
                for _, future in batch:
                    if not future.done():
                        error = _store_error(exc)
                        error.__cause__ = exc
                        future.set_exception(error)
                return
            else:
                self.batched_calls += len(batch)
        answered: dict[int, Row] = {row["o_index"]: row for row in rows}
        for index, (_, future) in enumerate(batch, start=1):
            row = answered.get(index)
            if not future.done():
                future.set_result(None if row is None or row["o_status"] == "retry" else row)


def _same_shape(calls: list[tuple[Any, ...]]) -> bool:
    """True when every list argument has the same length in every call (a 2-D array)."""
    first = calls[0]
    for position, value in enumerate(first):
        if isinstance(value, list):
            size = len(value)
            if any(len(call[position]) != size for call in calls):
                return False
    return True

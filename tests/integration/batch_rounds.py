"""Rounds of concurrent calls through PostgreSQL group commit, checked against one-by-one calls.

Used by the fast-path differential tests. A round sends its calls all at once to a store with
group commit: the first goes alone (nothing else is in flight), the others queue behind it
and go as one batch. A batch runs its calls sorted by lock key (client, currency, shard,
player; calls without a player last), the sort being stable, so the reference side (the
generic path, one call at a time) runs the first call, then the others in that same order.
Every answer must be the same; the callers compare the stored state at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from gamewallet.store.pg_fastpath import FastPostgresStore

C = TypeVar("C")

#: Sorts a call in a batch: (0, shard, player id) for a call with a player, (1,) without.
LockKey = tuple[int, ...]


@contextlib.asynccontextmanager
async def group_commit_store(
    pg_url: str, client_id: int, *, calls_min: int
) -> AsyncIterator[tuple[FastPostgresStore, dict[str, int]]]:
    """A store with group commit on ``pg_url``, and the ids of ``client_id``'s players by
    external id; on a clean exit, checks that at least ``calls_min`` calls went in batches."""
    store = FastPostgresStore(pg_url, batch_max=32)
    await store.start()
    try:
        pool = store._pool
        assert pool is not None
        rows = await pool.fetch(
            "SELECT external_id, id FROM players WHERE client_id = $1", client_id
        )
        yield store, {r["external_id"]: r["id"] for r in rows}
        assert store.group is not None
        assert store.group.batched_calls >= calls_min, "the calls should have gone in batches"
    finally:
        await store.close()


def player_key(player_id: int | None, shards: int) -> LockKey:
    """The batch's sort key of a call on ``player_id`` (None: the call has no player)."""
    return (1,) if player_id is None else (0, player_id % shards, player_id)


async def check_round(
    store: FastPostgresStore,
    calls: Sequence[C],
    batched: Callable[[C], Awaitable[Any]],
    alone: Callable[[C], Awaitable[Any]],
    key: Callable[[C], LockKey],
    same: Callable[[Any, Any], bool] = operator.eq,
) -> list[Any]:
    """Send ``calls`` at once through ``store`` (``batched``) and one by one (``alone``), in the
    order the batch ran them; assert every answer is the same. Returns the batched answers."""
    group = store.group
    assert group is not None
    assert group.batch_max >= len(calls), "one round must fit in one batch"
    before = group.batches
    got = await asyncio.gather(*(batched(call) for call in calls))
    if len(calls) >= 3:
        assert group.batches == before + 1, "the round should have gone as one batch"
    rest = sorted(range(1, len(calls)), key=lambda i: key(calls[i]))
    for index in [0, *rest][: len(calls)]:
        want = await alone(calls[index])
        assert same(got[index], want), f"call {index} of {len(calls)}: {calls[index]}"
    return list(got)

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
import operator
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from gamewallet.store.pg_fastpath import FastPostgresStore

C = TypeVar("C")

#: Sorts a call in a batch: (0, shard, player id) for a call with a player, (1,) without.
LockKey = tuple[int, ...]


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

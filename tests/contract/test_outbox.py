"""Contract: the outbox (enqueue, claim with a lease, finish by the lease owner, retry, list)."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from gamewallet.store import ops
from gamewallet.store.port import Store, UseCase, do
from gamewallet.store.records import ClientRecord, OutboxRecord

R = TypeVar("R")
T0 = 1_767_225_600_000
LEASE_MS = 30_000


async def one(store: Store, op: ops.Op[R]) -> R:
    """Run a single request in its own transaction."""
    return await store.run(do(op))


async def enqueue(
    store: Store,
    topic: str = "payment",
    *,
    due_ms: int = T0,
    now_ms: int = T0,
    payload: dict[str, Any] | None = None,
    client_id: int | None = None,
    operation_id: int | None = None,
) -> int:
    return await one(
        store, ops.Enqueue(topic, client_id, operation_id, payload or {"n": 1}, due_ms, now_ms)
    )


async def claim(
    store: Store, owner: str, now_ms: int, *, limit: int = 10, topics: tuple[str, ...] | None = None
) -> list[OutboxRecord]:
    return await one(store, ops.ClaimOutbox(owner, limit, LEASE_MS, now_ms, topics))


async def test_enqueue_stores_a_pending_message(store: Store, client: ClientRecord) -> None:
    payload = {"url": "https://x.example/cb?a=1&b=✓", "body": {"amount": "1.5", "名": [1, None]}}
    first = await enqueue(store, client_id=client.id, payload=payload, due_ms=T0 + 5, now_ms=T0)
    second = await enqueue(store)
    assert 0 < first < second
    page, total = await one(store, ops.ListOutbox())
    assert total == 2
    assert page[1] == OutboxRecord(
        id=first,
        topic="payment",
        client_id=client.id,
        operation_id=None,
        payload=payload,
        created_at_ms=T0,
        due_at_ms=T0 + 5,
        attempts=0,
        state="pending",
    )


async def test_claim_takes_due_messages_in_due_order(store: Store) -> None:
    late = await enqueue(store, due_ms=T0 + 2)
    early = await enqueue(store, due_ms=T0 + 1)
    also_early = await enqueue(store, due_ms=T0 + 1)
    future = await enqueue(store, due_ms=T0 + 1_000_000)
    claimed = await claim(store, "w1", T0 + 10)
    assert [m.id for m in claimed] == [early, also_early, late]
    assert future not in [m.id for m in claimed]
    for message in claimed:
        assert message.lease_owner == "w1"
        assert message.lease_until_ms == T0 + 10 + LEASE_MS
        assert message.attempts == 1
        assert message.first_attempt_at_ms == T0 + 10
        assert message.state == "pending"


async def test_claim_respects_limit_and_topics(store: Store) -> None:
    payments = [await enqueue(store, "payment") for _ in range(3)]
    settlement = await enqueue(store, "settlement")
    assert [m.id for m in await claim(store, "w1", T0, limit=2)] == payments[:2]
    assert [m.id for m in await claim(store, "w2", T0, topics=("settlement",))] == [settlement]
    assert await claim(store, "w3", T0, topics=("other",)) == []
    assert [m.id for m in await claim(store, "w3", T0)] == [payments[2]]
    assert await claim(store, "w4", T0) == []


async def test_a_lease_blocks_others_until_it_runs_out(store: Store) -> None:
    message = await enqueue(store)
    (first,) = await claim(store, "w1", T0)
    assert await claim(store, "w2", T0 + LEASE_MS - 1) == []
    (second,) = await claim(store, "w2", T0 + LEASE_MS + 1)
    assert second.id == message
    assert (second.lease_owner, second.attempts) == ("w2", 2)
    assert second.first_attempt_at_ms == first.first_attempt_at_ms == T0
    # The first worker lost its lease: its answer is refused and changes nothing.
    assert await one(store, ops.FinishOutbox(message, "w1", "done", T0 + LEASE_MS + 2)) is False
    (listed,), _ = await one(store, ops.ListOutbox())
    assert listed == second


async def test_only_the_lease_owner_finishes(store: Store) -> None:
    never_claimed = await enqueue(store)
    assert await one(store, ops.FinishOutbox(never_claimed, "w1", "done", T0)) is False
    claimed = await enqueue(store)
    await claim(store, "w1", T0, topics=None, limit=10)
    assert await one(store, ops.FinishOutbox(claimed, "intruder", "dead", T0)) is False
    assert await one(store, ops.FinishOutbox(9999, "w1", "done", T0)) is False
    assert await one(store, ops.FinishOutbox(claimed, "w1", "done", T0 + 7)) is True
    page, _ = await one(store, ops.ListOutbox(state="done"))
    assert [m.id for m in page] == [claimed]
    done = page[0]
    assert (done.state, done.done_at_ms, done.attempts) == ("done", T0 + 7, 1)
    assert done.lease_owner is None
    assert done.lease_until_ms is None
    # A finished message is never claimed again.
    assert [m.id for m in await claim(store, "w2", T0 + 10 * LEASE_MS)] == [never_claimed]


async def test_a_failed_attempt_is_retried_when_due(store: Store) -> None:
    message = await enqueue(store)
    await claim(store, "w1", T0)
    finished = ops.FinishOutbox(
        message, "w1", "pending", T0 + 100, due_at_ms=T0 + 5_000, error="HTTP 503 ✗"
    )
    assert await one(store, finished) is True
    (record,), _ = await one(store, ops.ListOutbox(state="pending"))
    assert (record.state, record.due_at_ms, record.last_error) == (
        "pending",
        T0 + 5_000,
        "HTTP 503 ✗",
    )
    assert record.lease_owner is None
    assert record.done_at_ms is None
    assert await claim(store, "w2", T0 + 4_999) == []
    (again,) = await claim(store, "w2", T0 + 5_000)
    assert (again.id, again.attempts, again.lease_owner) == (message, 2, "w2")
    assert again.first_attempt_at_ms == T0


async def test_dead_messages_are_retried_by_hand(store: Store) -> None:
    message = await enqueue(store)
    await claim(store, "w1", T0)
    assert await one(store, ops.FinishOutbox(message, "w1", "dead", T0 + 1, error="gave up"))
    assert await claim(store, "w2", T0 + 10 * LEASE_MS) == []
    (dead,), total = await one(store, ops.ListOutbox(state="dead"))
    assert (dead.state, dead.last_error, total) == ("dead", "gave up", 1)

    assert await one(store, ops.RetryOutbox(message, T0 + 50)) is True
    (retried,), _ = await one(store, ops.ListOutbox())
    assert (retried.state, retried.due_at_ms) == ("pending", T0 + 50)
    (claimed,) = await claim(store, "w2", T0 + 50)
    assert (claimed.id, claimed.attempts) == (message, 2)


async def test_retry_makes_a_pending_message_due_now_but_never_a_done_one(store: Store) -> None:
    later = await enqueue(store, due_ms=T0 + 1_000_000)
    assert await one(store, ops.RetryOutbox(later, T0 + 1)) is True
    (claimed,) = await claim(store, "w1", T0 + 1)
    assert claimed.id == later
    assert await one(store, ops.FinishOutbox(later, "w1", "done", T0 + 2)) is True
    assert await one(store, ops.RetryOutbox(later, T0 + 3)) is False
    assert await one(store, ops.RetryOutbox(424242, T0 + 3)) is False
    (record,), _ = await one(store, ops.ListOutbox())
    assert record.state == "done"


async def test_list_outbox_newest_first_with_state_and_paging(store: Store) -> None:
    ids = [await enqueue(store, now_ms=T0 + i) for i in range(5)]
    await claim(store, "w", T0 + 10, limit=2)
    await one(store, ops.FinishOutbox(ids[0], "w", "done", T0 + 11))
    await one(store, ops.FinishOutbox(ids[1], "w", "dead", T0 + 11))
    page, total = await one(store, ops.ListOutbox(limit=2))
    assert ([m.id for m in page], total) == ([ids[4], ids[3]], 5)
    page, total = await one(store, ops.ListOutbox(offset=2, limit=2))
    assert ([m.id for m in page], total) == ([ids[2], ids[1]], 5)
    page, total = await one(store, ops.ListOutbox(state="pending"))
    assert ([m.id for m in page], total) == ([ids[4], ids[3], ids[2]], 3)
    page, total = await one(store, ops.ListOutbox(state="pending", offset=1, limit=1))
    assert ([m.id for m in page], total) == ([ids[3]], 3)
    page, total = await one(store, ops.ListOutbox(state="done"))
    assert ([m.id for m in page], total) == ([ids[0]], 1)
    page, total = await one(store, ops.ListOutbox(state="dead"))
    assert ([m.id for m in page], total) == ([ids[1]], 1)


async def test_enqueue_commits_with_its_use_case_only(store: Store) -> None:
    def enqueue_then_fail() -> UseCase[None]:
        yield from do(ops.Enqueue("payment", None, None, {}, T0, T0))
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await store.run(enqueue_then_fail())
    assert await one(store, ops.ListOutbox()) == ([], 0)
    assert await claim(store, "w", T0) == []

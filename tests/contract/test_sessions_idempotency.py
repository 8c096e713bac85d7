"""Contract: sessions and tickets, stored answers (idempotency), key locks and meta values."""

from __future__ import annotations

from typing import TypeVar

import pytest

from gamewallet.core.ledger import Bucket, OwnerKind, shard_of
from gamewallet.core.states import OpState
from gamewallet.store import ops
from gamewallet.store.port import Store, UseCase, do
from gamewallet.store.records import (
    ClientRecord,
    IdempotencyRecord,
    PlayerRecord,
    SessionRecord,
)

R = TypeVar("R")
NOW_MS = 1_767_225_600_000


async def one(store: Store, op: ops.Op[R]) -> R:
    """Run a single request in its own transaction."""
    return await store.run(do(op))


# --- sessions ----------------------------------------------------------------------------


async def test_session_round_trip(store: Store, client: ClientRecord, player: PlayerRecord) -> None:
    session = SessionRecord(
        token="3f2a-✓",
        client_id=client.id,
        player_id=player.id,
        kind="session",
        expires_at_ms=NOW_MS + 3_600_000,
        created_at_ms=NOW_MS,
    )
    await one(store, ops.InsertSession(session))
    assert await one(store, ops.GetSession("3f2a-✓")) == session
    assert await one(store, ops.GetSession("other")) is None


async def test_a_ticket_is_used_once(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    ticket = SessionRecord("t-1", client.id, player.id, "ticket", NOW_MS + 60_000, NOW_MS)
    await one(store, ops.InsertSession(ticket))
    assert await one(store, ops.MarkSessionUsed("t-1", NOW_MS + 5)) is True
    assert await one(store, ops.MarkSessionUsed("t-1", NOW_MS + 9)) is False
    used = await one(store, ops.GetSession("t-1"))
    assert used is not None
    assert used.used_at_ms == NOW_MS + 5
    assert await one(store, ops.MarkSessionUsed("unknown", NOW_MS)) is False


async def test_marking_used_in_one_use_case_twice(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    ticket = SessionRecord("t-2", client.id, player.id, "ticket", NOW_MS + 60_000, NOW_MS)

    def insert_and_use_twice() -> UseCase[tuple[bool, bool]]:
        yield from do(ops.InsertSession(ticket))
        first = yield from do(ops.MarkSessionUsed("t-2", NOW_MS))
        second = yield from do(ops.MarkSessionUsed("t-2", NOW_MS))
        return first, second

    assert await store.run(insert_and_use_twice()) == (True, False)


# --- idempotency -------------------------------------------------------------------------


async def test_the_first_answer_stored_wins(store: Store, client: ClientRecord) -> None:
    assert await one(store, ops.GetIdempotency(client.id, "bet", "k-1")) is None
    first = b'{"status":"OK","balance":1.5}\x00\xff binary-safe'
    await one(store, ops.SaveIdempotency(client.id, "bet", "k-1", "fp-1", first, NOW_MS))
    await one(store, ops.SaveIdempotency(client.id, "bet", "k-1", "fp-2", b"other", NOW_MS + 1))
    stored = await one(store, ops.GetIdempotency(client.id, "bet", "k-1"))
    assert stored == IdempotencyRecord("fp-1", first, NOW_MS)
    assert stored is not None
    assert isinstance(stored.response, bytes)


async def test_idempotency_keys_are_per_client_and_scope(
    store: Store, client: ClientRecord
) -> None:
    other = await one(store, ops.InsertClient("hrg", "a", None, None, "CNY", 0, 1, {}, NOW_MS))
    assert other is not None
    await one(store, ops.SaveIdempotency(client.id, "bet", "k", "1", b"1", NOW_MS))
    await one(store, ops.SaveIdempotency(client.id, "win", "k", "2", b"2", NOW_MS))
    await one(store, ops.SaveIdempotency(other.id, "bet", "k", "3", b"3", NOW_MS))
    for client_id, scope, expected in [
        (client.id, "bet", b"1"),
        (client.id, "win", b"2"),
        (other.id, "bet", b"3"),
    ]:
        record = await one(store, ops.GetIdempotency(client_id, scope, "k"))
        assert record is not None
        assert record.response == expected
    assert await one(store, ops.GetIdempotency(other.id, "win", "k")) is None


def _fund(client: ClientRecord, player: PlayerRecord) -> UseCase[None]:
    operation = yield from do(
        ops.InsertOperation(
            client.id, "admin", "f", "fund", player.id, "EUR", 900, 0, OpState.COMPLETED, 0
        )
    )
    assert operation is not None
    (shard,) = yield from do(
        ops.GetOwnerAccounts(
            OwnerKind.CLIENT,
            client.id,
            "EUR",
            client.shards,
            bucket=Bucket.CASH,
            shard=shard_of(player.id, client.shards),
        )
    )
    yield from do(
        ops.Apply(
            operation.id,
            (ops.Delta(player.cash.id, "EUR", 900), ops.Delta(shard.id, "EUR", -900)),
            0,
        )
    )


async def test_purge_deletes_old_answers_only_and_never_ledger_history(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    await store.run(_fund(client, player))
    for i in range(5):
        await one(store, ops.SaveIdempotency(client.id, "bet", f"old-{i}", "f", b"r", 1000 + i))
    await one(store, ops.SaveIdempotency(client.id, "bet", "new", "f", b"r", 5000))
    operations_before = await one(store, ops.ListOperations())
    player_before = await one(store, ops.GetPlayer(player_id=player.id))

    assert await one(store, ops.PurgeIdempotency(before_ms=5000, limit=3)) == 3
    assert await one(store, ops.PurgeIdempotency(before_ms=5000, limit=3)) == 2
    assert await one(store, ops.PurgeIdempotency(before_ms=5000, limit=3)) == 0
    for i in range(5):
        assert await one(store, ops.GetIdempotency(client.id, "bet", f"old-{i}")) is None
    assert await one(store, ops.GetIdempotency(client.id, "bet", "new")) is not None
    # Ledger history is untouched, however old it is.
    assert await one(store, ops.ListOperations()) == operations_before
    assert await one(store, ops.GetPlayer(player_id=player.id)) == player_before
    assert await one(store, ops.Audit()) == []
    assert await one(store, ops.PurgeIdempotency(before_ms=5001, limit=10)) == 1


async def test_purge_of_nothing(store: Store) -> None:
    assert await one(store, ops.PurgeIdempotency(before_ms=NOW_MS, limit=100)) == 0


# --- key locks and meta --------------------------------------------------------------------


async def test_try_lock_key_answers_a_bool(store: Store) -> None:
    def lock() -> UseCase[bool]:
        return (yield from do(ops.TryLockKey("jdb:transfer:42")))

    taken = await store.run(lock())
    assert isinstance(taken, bool)
    assert taken is True  # nobody else holds it
    # The lock ends with the transaction: the next use case takes it again.
    assert await store.run(lock()) is True


async def test_meta_first_value_wins(store: Store) -> None:
    assert await one(store, ops.GetMeta("secret_key")) is None
    assert await one(store, ops.SetMetaIfAbsent("secret_key", "abc✓")) == "abc✓"
    assert await one(store, ops.SetMetaIfAbsent("secret_key", "zzz")) == "abc✓"
    assert await one(store, ops.GetMeta("secret_key")) == "abc✓"
    assert await one(store, ops.GetMeta("other")) is None


@pytest.mark.parametrize("scope", ["bet", "精"])
async def test_idempotency_scope_text(store: Store, client: ClientRecord, scope: str) -> None:
    await one(store, ops.SaveIdempotency(client.id, scope, "κλειδί", "fp", b"", NOW_MS))
    record = await one(store, ops.GetIdempotency(client.id, scope, "κλειδί"))
    assert record == IdempotencyRecord("fp", b"", NOW_MS)

"""Contract: the ledger audit.

On every store: clean after a realistic mix of fundings, holds, posts, voids, pending credits
and a tombstone; and dirty after use cases that break an invariant the database cannot see
(a hold without its operation, a confirmed operation without postings...). On the memory
store only: each of the six checks of :class:`gamewallet.store.ops.Audit` fires when its
invariant is broken by corrupting the tables directly (the SQL stores' engineers test the
same against their own tables).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import pytest

from gamewallet.core.ledger import Bucket, OwnerKind, shard_of
from gamewallet.core.states import OpState
from gamewallet.store import ops
from gamewallet.store.memory import MemoryStore
from gamewallet.store.ops import Apply, Delta
from gamewallet.store.port import Store, UseCase, do
from gamewallet.store.records import ClientRecord, OperationRecord, PlayerRecord

R = TypeVar("R")
NOW_MS = 1_767_225_600_000


async def one(store: Store, op: ops.Op[R]) -> R:
    """Run a single request in its own transaction."""
    return await store.run(do(op))


# --- a miniature wallet, just enough to make realistic ledger history -----------------------


def shard_id(client: ClientRecord, player: PlayerRecord, bucket: Bucket) -> UseCase[int]:
    rows = yield from do(
        ops.GetOwnerAccounts(
            OwnerKind.CLIENT,
            client.id,
            player.currency,
            client.shards,
            bucket=bucket,
            shard=shard_of(player.id, client.shards),
            lock=True,
        )
    )
    return rows[0].id


def open_operation(
    client: ClientRecord,
    player: PlayerRecord,
    ext_id: str,
    kind: str,
    state: OpState,
    cash: int,
    free: int = 0,
) -> UseCase[OperationRecord]:
    operation = yield from do(
        ops.InsertOperation(
            client.id, "wire", ext_id, kind, player.id, "EUR", cash, free, state, NOW_MS
        )
    )
    assert operation is not None
    return operation


def fund(
    client: ClientRecord, player: PlayerRecord, ext_id: str, cash: int, free: int = 0
) -> UseCase[None]:
    """A single-phase posting from the client to the player (state completed)."""
    operation = yield from open_operation(
        client, player, ext_id, "fund", OpState.COMPLETED, cash, free
    )
    deltas: list[Delta] = []
    for account, bucket, amount in (
        (player.cash, Bucket.CASH, cash),
        (player.free, Bucket.FREE, free),
    ):
        if amount:
            other = yield from shard_id(client, player, bucket)
            deltas += [Delta(account.id, "EUR", posted_minor=amount)]
            deltas += [Delta(other, "EUR", posted_minor=-amount)]
    yield from do(Apply(operation.id, tuple(deltas), NOW_MS))


def hold(
    client: ClientRecord, player: PlayerRecord, ext_id: str, cash: int, free: int = 0
) -> UseCase[OperationRecord]:
    operation = yield from open_operation(
        client, player, ext_id, "withdraw", OpState.HELD, cash, free
    )
    deltas = [Delta(player.cash.id, "EUR", held_minor=cash)]
    if free:
        deltas.append(Delta(player.free.id, "EUR", held_minor=free))
    yield from do(Apply(operation.id, tuple(deltas), NOW_MS))
    return operation


def settle(client: ClientRecord, player: PlayerRecord, ext_id: str, *, post: bool) -> UseCase[None]:
    """Post or void the hold or pending credit of ``ext_id``."""
    operation = yield from do(ops.GetOperation(client_id=client.id, ext_id=ext_id, lock=True))
    assert operation is not None
    assert operation.state in (OpState.HELD, OpState.PENDING)
    sign = 1 if operation.state is OpState.PENDING else -1  # a credit pays the player
    deltas: list[Delta] = []
    for account, bucket, amount in (
        (player.cash, Bucket.CASH, operation.amount_minor),
        (player.free, Bucket.FREE, operation.free_minor),
    ):
        if not amount:
            continue
        if operation.state is OpState.HELD:
            release = Delta(account.id, "EUR", held_minor=-amount)
        else:
            release = Delta(account.id, "EUR", pending_minor=-amount)
        if post:
            other = yield from shard_id(client, player, bucket)
            release = replace(release, posted_minor=sign * amount)
            deltas.append(Delta(other, "EUR", posted_minor=-sign * amount))
        deltas.append(release)
    yield from do(Apply(operation.id, tuple(deltas), NOW_MS))
    state = OpState.CONFIRMED if post else OpState.ROLLED_BACK
    yield from do(ops.UpdateOperation(operation.id, state, NOW_MS + 1))


def credit(client: ClientRecord, player: PlayerRecord, ext_id: str, cash: int) -> UseCase[None]:
    operation = yield from open_operation(client, player, ext_id, "deposit", OpState.PENDING, cash)
    yield from do(Apply(operation.id, (Delta(player.cash.id, "EUR", pending_minor=cash),), NOW_MS))


def tombstone(client: ClientRecord, player: PlayerRecord, ext_id: str) -> UseCase[None]:
    yield from open_operation(client, player, ext_id, "withdraw", OpState.ROLLED_BACK, 0)


async def realistic_mix(store: Store, client: ClientRecord, player: PlayerRecord) -> PlayerRecord:
    """Every kind of movement, leaving some holds and credits open. Returns a second player."""
    other = await one(store, ops.InsertPlayer(client.id, "p-2", "EUR", "Bob", NOW_MS))
    assert other is not None
    await store.run(fund(client, player, "f-1", 100_000, free=5_000))
    await store.run(fund(client, other, "f-2", 7_000))
    await store.run(hold(client, player, "w-1", 20_000))
    await store.run(settle(client, player, "w-1", post=True))
    await store.run(hold(client, player, "w-2", 5_000, free=1_000))
    await store.run(settle(client, player, "w-2", post=True))
    await store.run(hold(client, player, "w-3", 3_000))
    await store.run(settle(client, player, "w-3", post=False))
    await store.run(hold(client, player, "w-4", 1_500, free=500))  # stays open
    await store.run(credit(client, player, "d-1", 40_000))
    await store.run(settle(client, player, "d-1", post=True))
    await store.run(credit(client, player, "d-2", 900))
    await store.run(settle(client, player, "d-2", post=False))
    await store.run(credit(client, other, "d-3", 250))  # stays open
    await store.run(hold(client, other, "w-5", 7_000))
    await store.run(settle(client, other, "w-5", post=True))
    await store.run(tombstone(client, player, "w-6"))
    await store.run(open_operation(client, player, "z", "adjust", OpState.COMPLETED, 0))
    return other


async def test_audit_is_clean_after_a_realistic_mix(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    assert await one(store, ops.Audit()) == []
    other = await realistic_mix(store, client, player)
    assert await one(store, ops.Audit()) == []
    after = await one(store, ops.GetPlayer(player_id=player.id))
    assert after is not None
    cash = 100_000 - 20_000 - 5_000 + 40_000
    assert (after.cash.balance.posted_minor, after.cash.balance.held_minor) == (cash, 1_500)
    assert (after.free.balance.posted_minor, after.free.balance.held_minor) == (4_000, 500)
    second = await one(store, ops.GetPlayer(player_id=other.id))
    assert second is not None
    assert (second.cash.balance.posted_minor, second.cash.balance.pending_credit_minor) == (0, 250)
    rows = await one(store, ops.GetOwnerAccounts(OwnerKind.CLIENT, client.id, "EUR", 4))
    assert sum(r.balance.posted_minor for r in rows) == -(cash + 0)
    free = await one(
        store, ops.GetOwnerAccounts(OwnerKind.CLIENT, client.id, "EUR", 4, bucket=Bucket.FREE)
    )
    assert sum(r.balance.posted_minor for r in free) == -4_000


def _hold_without_operation(client: ClientRecord, player: PlayerRecord) -> UseCase[None]:
    operation = yield from open_operation(client, player, "x", "fund", OpState.COMPLETED, 0)
    yield from do(Apply(operation.id, (Delta(player.cash.id, "EUR", held_minor=100),), NOW_MS))


def _held_operation_without_hold(client: ClientRecord, player: PlayerRecord) -> UseCase[None]:
    yield from open_operation(client, player, "x", "withdraw", OpState.HELD, 100)


def _confirmed_without_postings(client: ClientRecord, player: PlayerRecord) -> UseCase[None]:
    yield from open_operation(client, player, "x", "transfer", OpState.CONFIRMED, 100)


def _postings_on_a_held_operation(client: ClientRecord, player: PlayerRecord) -> UseCase[None]:
    operation = yield from open_operation(client, player, "x", "withdraw", OpState.HELD, 0)
    other = yield from shard_id(client, player, Bucket.CASH)
    deltas = (
        Delta(player.cash.id, "EUR", posted_minor=100),
        Delta(other, "EUR", posted_minor=-100),
    )
    yield from do(Apply(operation.id, deltas, NOW_MS))


def _credit_confirmed_without_posting(client: ClientRecord, player: PlayerRecord) -> UseCase[None]:
    yield from credit(client, player, "x", 100)
    operation = yield from do(ops.GetOperation(client_id=client.id, ext_id="x"))
    assert operation is not None
    yield from do(ops.UpdateOperation(operation.id, OpState.CONFIRMED, NOW_MS))


BUGGY_USE_CASES: dict[str, Callable[[ClientRecord, PlayerRecord], UseCase[None]]] = {
    "hold without operation": _hold_without_operation,
    "held operation without hold": _held_operation_without_hold,
    "confirmed without postings": _confirmed_without_postings,
    "postings on a held operation": _postings_on_a_held_operation,
    "credit confirmed without posting": _credit_confirmed_without_posting,
}


@pytest.mark.parametrize("case", sorted(BUGGY_USE_CASES))
async def test_audit_finds_what_the_database_cannot_refuse(
    store: Store, client: ClientRecord, player: PlayerRecord, case: str
) -> None:
    await store.run(fund(client, player, "f-0", 1_000))
    await store.run(BUGGY_USE_CASES[case](client, player))
    lines = await one(store, ops.Audit())
    assert lines
    assert all(isinstance(line, str) for line in lines)


# --- memory only: every check against corrupted tables -----------------------------------------


@pytest.fixture
async def messy() -> tuple[MemoryStore, ClientRecord, PlayerRecord]:
    """A memory store holding the realistic mix, still clean."""
    store = MemoryStore()
    client = await one(
        store, ops.InsertClient("seamless", "acme", None, None, None, None, 4, {}, NOW_MS)
    )
    assert client is not None
    player = await one(store, ops.InsertPlayer(client.id, "p-1", "EUR", "", NOW_MS))
    assert player is not None
    await realistic_mix(store, client, player)
    assert await one(store, ops.Audit()) == []
    return store, client, player


async def operation_id(store: MemoryStore, client: ClientRecord, ext_id: str) -> int:
    operation = await one(store, ops.GetOperation(client_id=client.id, ext_id=ext_id))
    assert operation is not None
    return operation.id


async def audit_lines(store: MemoryStore) -> str:
    lines = await one(store, ops.Audit())
    assert lines, "the audit missed the corruption"
    return "\n".join(lines)


async def test_check_1_posted_balances_sum_to_zero(
    messy: tuple[MemoryStore, ClientRecord, PlayerRecord],
) -> None:
    store, client, player = messy
    (shard,) = await one(
        store,
        ops.GetOwnerAccounts(OwnerKind.CLIENT, client.id, "EUR", 4, shard=shard_of(player.id, 4)),
    )
    row = store._accounts[shard.id]
    store._accounts[shard.id] = replace(row, posted_minor=row.posted_minor + 5)
    assert "currency EUR: posted balances sum to 5, not 0" in await audit_lines(store)


async def test_check_2_negative_hold_or_pending(
    messy: tuple[MemoryStore, ClientRecord, PlayerRecord],
) -> None:
    store, client, _ = messy
    (shard,) = await one(
        store, ops.GetOwnerAccounts(OwnerKind.CLIENT, client.id, "EUR", 4, shard=3)
    )
    store._accounts[shard.id] = replace(store._accounts[shard.id], pending_minor=-1)
    assert "negative hold or pending credit" in await audit_lines(store)


async def test_check_2_no_overdraft_below_zero(
    messy: tuple[MemoryStore, ClientRecord, PlayerRecord],
) -> None:
    store, _, player = messy
    row = store._accounts[player.cash.id]
    store._accounts[player.cash.id] = replace(row, held_minor=row.posted_minor + 1)
    assert f"account {player.cash.id} " in await audit_lines(store)
    assert "no-overdraft account below zero" in await audit_lines(store)


async def test_check_3_postings_of_an_operation_balance(
    messy: tuple[MemoryStore, ClientRecord, PlayerRecord],
) -> None:
    store, client, _ = messy
    target = await operation_id(store, client, "w-1")
    posting = next(p for p in store._postings.values() if p.operation_id == target)
    store._postings[posting.id] = replace(posting, amount_minor=posting.amount_minor + 7)
    assert f"operation {target}: postings in EUR sum to 7, not 0" in await audit_lines(store)


async def test_check_4_posted_balance_is_the_sum_of_postings(
    messy: tuple[MemoryStore, ClientRecord, PlayerRecord],
) -> None:
    store, client, player = messy
    # Move one posting to the player's free account: every operation still balances.
    target = await operation_id(store, client, "w-1")
    posting = next(
        p
        for p in store._postings.values()
        if p.operation_id == target and p.account_id == player.cash.id
    )
    store._postings[posting.id] = replace(posting, account_id=player.free.id)
    text = await audit_lines(store)
    assert f"account {player.cash.id} " in text
    assert f"account {player.free.id} " in text
    assert "but its postings sum to" in text
    assert "not 0" not in text  # checks 1 and 3 still hold


async def test_check_5_holds_match_open_operations(
    messy: tuple[MemoryStore, ClientRecord, PlayerRecord],
) -> None:
    store, client, player = messy
    target = await operation_id(store, client, "w-4")  # an open hold of 1,500 + 500 free
    store._operations[target] = replace(store._operations[target], amount_minor=1_400)
    text = await audit_lines(store)
    assert f"account {player.cash.id} " in text
    assert "held 1500 / pending 0, but its open operations hold 1400 / credit 0" in text
    assert f"account {player.free.id} " not in text


async def test_check_5_a_hold_resolved_twice(
    messy: tuple[MemoryStore, ClientRecord, PlayerRecord],
) -> None:
    store, client, player = messy
    # Releasing a hold without resolving its operation is as bad as resolving it twice.
    row = store._accounts[player.cash.id]
    store._accounts[player.cash.id] = replace(row, held_minor=0)
    target = await operation_id(store, client, "w-4")
    text = await audit_lines(store)
    assert "open operations hold 1500" in text
    assert f"operation {target}" not in text


async def test_check_5_pending_credits(
    messy: tuple[MemoryStore, ClientRecord, PlayerRecord],
) -> None:
    store, client, _ = messy
    target = await operation_id(store, client, "d-3")  # an open credit of 250
    store._operations[target] = replace(store._operations[target], state=OpState.ROLLED_BACK)
    assert "but its open operations hold 0 / credit 0" in await audit_lines(store)


async def test_check_6_unposted_operation_with_postings(
    messy: tuple[MemoryStore, ClientRecord, PlayerRecord],
) -> None:
    store, client, _ = messy
    target = await operation_id(store, client, "w-1")
    store._operations[target] = replace(store._operations[target], state=OpState.ROLLED_BACK)
    text = await audit_lines(store)
    assert f"operation {target} in state rolled_back has 2 postings" in text


async def test_check_6_posted_operation_without_postings(
    messy: tuple[MemoryStore, ClientRecord, PlayerRecord],
) -> None:
    store, client, _ = messy
    target = await operation_id(store, client, "w-3")  # voided, so it has no postings
    store._operations[target] = replace(store._operations[target], state=OpState.CONFIRMED)
    text = await audit_lines(store)
    assert f"operation {target} in state confirmed moved 3000+0 but has no postings" in text
    # A completed operation that moved nothing needs no postings.
    assert "in state completed" not in text

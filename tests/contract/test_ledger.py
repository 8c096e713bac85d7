"""Contract: owner accounts, Apply, the CHECK constraints, and all-or-nothing use cases."""

from __future__ import annotations

from typing import TypeVar

import pytest

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.ledger import Balance, Bucket, OwnerKind, shard_of
from gamewallet.core.states import OpState
from gamewallet.store import ops
from gamewallet.store.ops import Apply, Delta
from gamewallet.store.port import Store, UseCase, do
from gamewallet.store.records import AccountRecord, ClientRecord, PlayerRecord, SessionRecord

R = TypeVar("R")
NOW_MS = 1_767_225_600_000


async def one(store: Store, op: ops.Op[R]) -> R:
    """Run a single request in its own transaction."""
    return await store.run(do(op))


def client_shard(client: ClientRecord, player: PlayerRecord, bucket: Bucket) -> UseCase[int]:
    """The id of the client shard row on the other side of ``player``'s postings."""
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


def fund(
    client: ClientRecord, player: PlayerRecord, amount: int, ext_id: str, *, free: bool = False
) -> UseCase[int]:
    """Post ``amount`` from the client to the player's cash (or free) account."""
    operation = yield from do(
        ops.InsertOperation(
            client.id,
            "admin",
            ext_id,
            "fund",
            player.id,
            player.currency,
            0 if free else amount,
            amount if free else 0,
            OpState.COMPLETED,
            NOW_MS,
        )
    )
    assert operation is not None
    bucket = Bucket.FREE if free else Bucket.CASH
    other = yield from client_shard(client, player, bucket)
    account = player.free if free else player.cash
    yield from do(
        Apply(
            operation.id,
            (
                Delta(account.id, player.currency, posted_minor=amount),
                Delta(other, player.currency, posted_minor=-amount),
            ),
            NOW_MS,
        )
    )
    return operation.id


def new_operation(
    client: ClientRecord, player: PlayerRecord, ext_id: str, state: OpState, amount: int = 0
) -> UseCase[int]:
    operation = yield from do(
        ops.InsertOperation(
            client.id,
            "wire",
            ext_id,
            "withdraw",
            player.id,
            player.currency,
            amount,
            0,
            state,
            NOW_MS,
        )
    )
    assert operation is not None
    return operation.id


async def balances(store: Store, player: PlayerRecord) -> tuple[Balance, Balance]:
    record = await one(store, ops.GetPlayer(player_id=player.id))
    assert record is not None
    return record.cash.balance, record.free.balance


# --- owner accounts ----------------------------------------------------------------------


async def test_owner_accounts_are_created_once_per_shard(
    store: Store, client: ClientRecord
) -> None:
    get = ops.GetOwnerAccounts(OwnerKind.CLIENT, client.id, "EUR", 4)
    rows = await one(store, get)
    assert len(rows) == 4
    assert len({r.id for r in rows}) == 4
    for row in rows:
        assert row == AccountRecord(row.id, "EUR", Bucket.CASH, Balance(0, 0, 0))
    assert await one(store, get) == rows
    assert (
        await one(store, ops.GetOwnerAccounts(OwnerKind.CLIENT, client.id, "EUR", 4, lock=True))
        == rows
    )
    for shard in range(4):
        single = ops.GetOwnerAccounts(OwnerKind.CLIENT, client.id, "EUR", 4, shard=shard)
        assert await one(store, single) == [rows[shard]]


async def test_one_shard_first_then_all(store: Store, client: ClientRecord) -> None:
    third = await one(store, ops.GetOwnerAccounts(OwnerKind.CLIENT, client.id, "EUR", 4, shard=2))
    rows = await one(store, ops.GetOwnerAccounts(OwnerKind.CLIENT, client.id, "EUR", 4))
    assert len(rows) == 4
    assert rows[2] == third[0]


async def test_owner_accounts_are_keyed_by_kind_currency_and_bucket(
    store: Store, client: ClientRecord
) -> None:
    keys = [
        (OwnerKind.CLIENT, "EUR", Bucket.CASH),
        (OwnerKind.CLIENT, "EUR", Bucket.FREE),
        (OwnerKind.CLIENT, "USD", Bucket.CASH),
        (OwnerKind.HOUSE, "EUR", Bucket.CASH),
    ]
    ids: set[int] = set()
    for kind, currency, bucket in keys:
        rows = await one(store, ops.GetOwnerAccounts(kind, client.id, currency, 2, bucket=bucket))
        assert [(r.currency, r.bucket) for r in rows] == [(currency, bucket)] * 2
        ids.update(r.id for r in rows)
    assert len(ids) == 8


# --- Apply -------------------------------------------------------------------------------


async def test_apply_posts_between_player_and_client(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    await store.run(fund(client, player, 10_000, "f-1"))
    await store.run(fund(client, player, 2_500, "f-2", free=True))
    assert await balances(store, player) == (Balance(10_000, 0, 0), Balance(2_500, 0, 0))
    shard = shard_of(player.id, client.shards)
    cash = await one(store, ops.GetOwnerAccounts(OwnerKind.CLIENT, client.id, "EUR", 4))
    free = await one(
        store, ops.GetOwnerAccounts(OwnerKind.CLIENT, client.id, "EUR", 4, bucket=Bucket.FREE)
    )
    # Client accounts may go below zero: they are not no-overdraft.
    assert [r.balance.posted_minor for r in cash] == [
        -10_000 if i == shard else 0 for i in range(4)
    ]
    assert sum(r.balance.posted_minor for r in free) == -2_500
    assert await one(store, ops.Audit()) == []


async def test_hold_and_pending_credit_move_no_posted_money(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    await store.run(fund(client, player, 10_000, "f-1"))

    def hold_and_credit() -> UseCase[None]:
        held = yield from new_operation(client, player, "w-1", OpState.HELD, 3_000)
        yield from do(Apply(held, (Delta(player.cash.id, "EUR", held_minor=3_000),), NOW_MS))
        credit = yield from do(
            ops.InsertOperation(
                client.id,
                "wire",
                "d-1",
                "deposit",
                player.id,
                "EUR",
                700,
                0,
                OpState.PENDING,
                NOW_MS,
            )
        )
        assert credit is not None
        yield from do(Apply(credit.id, (Delta(player.cash.id, "EUR", pending_minor=700),), NOW_MS))

    await store.run(hold_and_credit())
    cash, _ = await balances(store, player)
    assert cash == Balance(10_000, 3_000, 700)
    assert cash.available_minor == 7_000
    assert await one(store, ops.Audit()) == []


async def test_apply_sums_several_deltas_on_one_account(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    def fund_in_two_entries() -> UseCase[None]:
        operation = yield from new_operation(client, player, "f", OpState.COMPLETED, 300)
        other = yield from client_shard(client, player, Bucket.CASH)
        yield from do(
            Apply(
                operation,
                (
                    Delta(player.cash.id, "EUR", posted_minor=100),
                    Delta(player.cash.id, "EUR", posted_minor=200),
                    Delta(other, "EUR", posted_minor=-300),
                ),
                NOW_MS,
            )
        )

    await store.run(fund_in_two_entries())
    assert (await balances(store, player))[0] == Balance(300, 0, 0)
    assert await one(store, ops.Audit()) == []


async def test_non_zero_filter_sees_cash_and_free(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    second = await one(store, ops.InsertPlayer(client.id, "p-2", "EUR", "", NOW_MS))
    third = await one(store, ops.InsertPlayer(client.id, "p-3", "EUR", "", NOW_MS))
    assert second is not None
    assert third is not None
    await store.run(fund(client, player, 5, "f-1"))
    await store.run(fund(client, third, 5, "f-3", free=True))
    page, total = await one(store, ops.ListPlayers(client.id, non_zero=True))
    assert ([p.id for p in page], total) == ([player.id, third.id], 2)
    assert page[0].cash.balance.posted_minor == 5
    assert page[1].free.balance.posted_minor == 5


async def test_balanced_per_currency_across_currencies(store: Store, client: ClientRecord) -> None:
    def two_currencies() -> UseCase[None]:
        eur = yield from do(ops.GetOwnerAccounts(OwnerKind.HOUSE, 0, "EUR", 2))
        usd = yield from do(ops.GetOwnerAccounts(OwnerKind.HOUSE, 0, "USD", 2))
        player = yield from do(ops.InsertPlayer(client.id, "x", "EUR", "", NOW_MS))
        assert player is not None
        operation = yield from new_operation(client, player, "adj", OpState.COMPLETED, 1)
        yield from do(
            Apply(
                operation,
                (
                    Delta(eur[0].id, "EUR", posted_minor=5),
                    Delta(eur[1].id, "EUR", posted_minor=-5),
                    Delta(usd[0].id, "USD", posted_minor=-7),
                    Delta(usd[1].id, "USD", posted_minor=7),
                ),
                NOW_MS,
            )
        )

    await store.run(two_currencies())
    assert await one(store, ops.Audit()) == []


# --- broken invariants abort and roll back ------------------------------------------------


def _apply_after_insert(
    client: ClientRecord, player: PlayerRecord, deltas: list[tuple[str, Delta]]
) -> UseCase[None]:
    """Insert an operation, then apply ``deltas`` (account names resolved here)."""
    operation = yield from new_operation(client, player, "bad", OpState.COMPLETED, 1)
    other = yield from client_shard(client, player, Bucket.CASH)
    accounts = {"cash": player.cash.id, "free": player.free.id, "client": other}
    resolved = tuple(
        Delta(accounts[name], d.currency, d.posted_minor, d.held_minor, d.pending_minor)
        for name, d in deltas
    )
    yield from do(Apply(operation, resolved, NOW_MS))


BROKEN = {
    "overdraw posted": [
        ("cash", Delta(0, "EUR", posted_minor=-101)),
        ("client", Delta(0, "EUR", posted_minor=101)),
    ],
    "overdraw free": [
        ("free", Delta(0, "EUR", posted_minor=-1)),
        ("client", Delta(0, "EUR", posted_minor=1)),
    ],
    "hold more than available": [("cash", Delta(0, "EUR", held_minor=101))],
    "negative hold": [("cash", Delta(0, "EUR", held_minor=-1))],
    "negative pending credit": [("cash", Delta(0, "EUR", pending_minor=-1))],
    "unbalanced": [
        ("cash", Delta(0, "EUR", posted_minor=5)),
        ("client", Delta(0, "EUR", posted_minor=-4)),
    ],
    "one posted entry": [("cash", Delta(0, "EUR", posted_minor=5))],
    "balanced overall, not per currency": [
        ("cash", Delta(0, "EUR", posted_minor=5)),
        ("client", Delta(0, "USD", posted_minor=-5)),
    ],
}


@pytest.mark.parametrize("case", sorted(BROKEN))
async def test_broken_invariant_raises_and_rolls_back(
    store: Store, client: ClientRecord, player: PlayerRecord, case: str
) -> None:
    await store.run(fund(client, player, 100, "f-1"))
    before = await balances(store, player)
    with pytest.raises(AssertionError):
        await store.run(_apply_after_insert(client, player, BROKEN[case]))
    assert await balances(store, player) == before
    assert await one(store, ops.GetOperation(client_id=client.id, ext_id="bad")) is None
    assert await one(store, ops.Audit()) == []
    # The store is still usable after the rollback.
    await store.run(fund(client, player, 1, "f-2"))
    assert (await balances(store, player))[0].posted_minor == 101


async def test_spending_exactly_everything_is_allowed(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    await store.run(fund(client, player, 100, "f-1"))
    await store.run(
        _apply_after_insert(
            client,
            player,
            [
                ("cash", Delta(0, "EUR", posted_minor=-60, held_minor=0)),
                ("client", Delta(0, "EUR", posted_minor=60)),
            ],
        )
    )

    def hold_the_rest() -> UseCase[None]:
        operation = yield from new_operation(client, player, "w", OpState.HELD, 40)
        yield from do(Apply(operation, (Delta(player.cash.id, "EUR", held_minor=40),), NOW_MS))

    await store.run(hold_the_rest())
    cash, _ = await balances(store, player)
    assert cash == Balance(40, 40, 0)
    assert cash.available_minor == 0


async def test_a_use_case_that_raises_leaves_nothing_behind(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    await store.run(fund(client, player, 1_000, "f-1"))
    before_player = await one(store, ops.GetPlayer(player_id=player.id))
    before_ops = await one(store, ops.ListOperations())
    before_client = await one(store, ops.GetClient(client_id=client.id))

    def everything_then_refuse() -> UseCase[None]:
        operation = yield from new_operation(client, player, "w-1", OpState.CONFIRMED, 400)
        other = yield from client_shard(client, player, Bucket.CASH)
        yield from do(
            Apply(
                operation,
                (
                    Delta(player.cash.id, "EUR", posted_minor=-400),
                    Delta(other, "EUR", posted_minor=400),
                ),
                NOW_MS,
            )
        )
        yield from do(ops.UpdateOperation(operation, OpState.ROLLED_BACK, NOW_MS, {"x": 1}))
        yield from do(ops.UpdatePlayer(player.id, {"nickname": "changed", "locked": True}))
        yield from do(ops.UpdateClient(client.id, {"disabled": True, "config": {}}))
        yield from do(ops.InsertPlayer(client.id, "new", "EUR", "", NOW_MS))
        yield from do(ops.GetOwnerAccounts(OwnerKind.HOUSE, 0, "EUR", 3))
        yield from do(ops.Enqueue("payment", client.id, operation, {"a": 1}, NOW_MS, NOW_MS))
        yield from do(ops.SaveIdempotency(client.id, "bet", "k", "fp", b"{}", NOW_MS))
        yield from do(
            ops.InsertSession(SessionRecord("tok", client.id, player.id, "session", NOW_MS, 0))
        )
        yield from do(ops.SetMetaIfAbsent("m", "v"))
        raise WalletError(ErrorCode.INSUFFICIENT_FUNDS)

    with pytest.raises(WalletError) as caught:
        await store.run(everything_then_refuse())
    assert caught.value.code is ErrorCode.INSUFFICIENT_FUNDS

    assert await one(store, ops.GetPlayer(player_id=player.id)) == before_player
    assert await one(store, ops.GetClient(client_id=client.id)) == before_client
    assert await one(store, ops.ListOperations()) == before_ops
    assert await one(store, ops.GetPlayer(client_id=client.id, external_id="new")) is None
    assert await one(store, ops.ListOutbox()) == ([], 0)
    assert await one(store, ops.GetIdempotency(client.id, "bet", "k")) is None
    assert await one(store, ops.GetSession("tok")) is None
    assert await one(store, ops.GetMeta("m")) is None
    assert await one(store, ops.Audit()) == []


async def test_an_unexpected_exception_rolls_back_too(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    def fund_then_crash() -> UseCase[None]:
        yield from fund(client, player, 500, "f-1")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await store.run(fund_then_crash())
    assert await balances(store, player) == (Balance(0, 0, 0), Balance(0, 0, 0))
    assert await one(store, ops.ListOperations()) == ([], 0)
    assert await one(store, ops.Audit()) == []
    # The caller id was never claimed: it can be used now.
    await store.run(fund(client, player, 500, "f-1"))
    assert (await balances(store, player))[0].posted_minor == 500

"""Contract: operations (the caller id's unique key, updates, JSON detail, listing)."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from gamewallet.core.states import OpState
from gamewallet.store import ops
from gamewallet.store.port import Store, UseCase, do
from gamewallet.store.records import ClientRecord, OperationRecord, PlayerRecord

R = TypeVar("R")
NOW_MS = 1_767_225_600_000


async def one(store: Store, op: ops.Op[R]) -> R:
    """Run a single request in its own transaction."""
    return await store.run(do(op))


def insert(
    client: ClientRecord,
    player: PlayerRecord,
    ext_id: str,
    *,
    ns: str = "wire",
    kind: str = "withdraw",
    state: OpState = OpState.HELD,
    amount: int = 100,
    free: int = 0,
    at_ms: int = NOW_MS,
    detail: dict[str, Any] | None = None,
) -> ops.InsertOperation:
    return ops.InsertOperation(
        client_id=client.id,
        ns=ns,
        ext_id=ext_id,
        kind=kind,
        player_id=player.id,
        currency=player.currency,
        amount_minor=amount,
        free_minor=free,
        state=state,
        now_ms=at_ms,
        detail=detail or {},
    )


async def test_insert_operation_returns_every_field(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    detail = {"round": "r-1", "game": "slots", "amounts": [1, 2]}
    record = await one(store, insert(client, player, "tx-1", amount=1_234, free=56, detail=detail))
    assert record == OperationRecord(
        id=record.id if record else 0,
        client_id=client.id,
        ns="wire",
        ext_id="tx-1",
        kind="withdraw",
        player_id=player.id,
        currency="EUR",
        amount_minor=1_234,
        free_minor=56,
        state=OpState.HELD,
        created_at_ms=NOW_MS,
        updated_at_ms=NOW_MS,
        detail=detail,
    )
    assert record is not None
    assert isinstance(record.state, OpState)
    assert await one(store, ops.GetOperation(operation_id=record.id)) == record
    assert await one(store, ops.GetOperation(client_id=client.id, ext_id="tx-1")) == record
    assert (
        await one(store, ops.GetOperation(client_id=client.id, ns="wire", ext_id="tx-1", lock=True))
        == record
    )


async def test_the_caller_id_is_claimed_once(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    first = await one(store, insert(client, player, "tx-1"))
    assert first is not None
    assert await one(store, insert(client, player, "tx-1", kind="deposit", amount=5)) is None
    assert await one(store, ops.GetOperation(operation_id=first.id)) == first
    # Another namespace or another client is another key.
    admin = await one(store, insert(client, player, "tx-1", ns="admin"))
    assert admin is not None
    assert admin.id != first.id
    other_client = await one(
        store,
        ops.InsertClient("jdb", "dc", None, None, "CNY", None, 1, {}, NOW_MS),
    )
    assert other_client is not None
    elsewhere = await one(
        store,
        ops.InsertOperation(
            other_client.id,
            "wire",
            "tx-1",
            "withdraw",
            player.id,
            "EUR",
            1,
            0,
            OpState.HELD,
            NOW_MS,
        ),
    )
    assert elsewhere is not None
    assert len({first.id, admin.id, elsewhere.id}) == 3


async def test_the_claim_is_decided_inside_one_use_case(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    def claim_twice() -> UseCase[tuple[bool, bool]]:
        first = yield from do(insert(client, player, "tx"))
        second = yield from do(insert(client, player, "tx"))
        return first is not None, second is not None

    assert await store.run(claim_twice()) == (True, False)


async def test_unknown_operation_is_none(store: Store, client: ClientRecord) -> None:
    assert await one(store, ops.GetOperation(operation_id=4242)) is None
    assert await one(store, ops.GetOperation(client_id=client.id, ext_id="nope")) is None
    assert (
        await one(store, ops.GetOperation(client_id=client.id, ns="admin", ext_id="nope")) is None
    )


async def test_negative_amounts_are_assertions(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    with pytest.raises(AssertionError):
        await one(store, insert(client, player, "a", amount=-1))
    with pytest.raises(AssertionError):
        await one(store, insert(client, player, "b", free=-1))
    assert await one(store, ops.ListOperations()) == ([], 0)


async def test_update_operation_moves_state_and_merges_detail(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    created = await one(store, insert(client, player, "tx", detail={"keep": 1, "replace": "old"}))
    assert created is not None
    await one(
        store,
        ops.UpdateOperation(
            created.id, OpState.CONFIRMED, NOW_MS + 500, {"replace": "new", "added": [1]}
        ),
    )
    updated = await one(store, ops.GetOperation(operation_id=created.id))
    assert updated is not None
    assert updated.state is OpState.CONFIRMED
    assert (updated.created_at_ms, updated.updated_at_ms) == (NOW_MS, NOW_MS + 500)
    assert updated.detail == {"keep": 1, "replace": "new", "added": [1]}
    assert (updated.amount_minor, updated.ext_id, updated.kind) == (100, "tx", "withdraw")
    # An empty detail changes only the state and time.
    await one(store, ops.UpdateOperation(created.id, OpState.ROLLED_BACK, NOW_MS + 600))
    again = await one(store, ops.GetOperation(operation_id=created.id))
    assert again is not None
    assert again.state is OpState.ROLLED_BACK
    assert again.detail == updated.detail


async def test_detail_json_round_trips_unicode(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    detail = {
        "remark": "泥码 ✓ 🎰",
        "esc": 'tab\tnew\nline "q" \\',
        "nested": {"ü": ["ß", None, False, 0, -1.5]},
        "big": 10**15,
    }
    created = await one(store, insert(client, player, "tx-ü", detail=detail))
    assert created is not None
    assert created.detail == detail
    fetched = await one(store, ops.GetOperation(client_id=client.id, ext_id="tx-ü"))
    assert fetched is not None
    assert fetched.detail == detail
    assert fetched.ext_id == "tx-ü"


async def test_returned_detail_is_a_copy(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    given = {"a": [1]}
    created = await one(store, insert(client, player, "tx", detail=given))
    assert created is not None
    given["a"].append(2)
    mutable = created.detail
    assert isinstance(mutable, dict)
    mutable["b"] = 1
    fetched = await one(store, ops.GetOperation(operation_id=created.id))
    assert fetched is not None
    assert fetched.detail == {"a": [1]}


# --- listing -----------------------------------------------------------------------------


def _history(client: ClientRecord, player: PlayerRecord) -> UseCase[list[OperationRecord]]:
    """Five operations, created one second apart, two with the same time."""
    specs: list[tuple[str, dict[str, Any]]] = [
        ("a", {"at_ms": NOW_MS, "kind": "withdraw", "state": OpState.HELD}),
        ("b", {"at_ms": NOW_MS + 1000, "kind": "deposit", "state": OpState.PENDING}),
        ("c", {"at_ms": NOW_MS + 2000, "kind": "withdraw", "state": OpState.CONFIRMED}),
        (
            "d",
            {"at_ms": NOW_MS + 2000, "kind": "transfer", "state": OpState.COMPLETED, "ns": "admin"},
        ),
        ("e", {"at_ms": NOW_MS + 3000, "kind": "withdraw", "state": OpState.ROLLED_BACK}),
    ]
    created: list[OperationRecord] = []
    for ext_id, fields in specs:
        record = yield from do(insert(client, player, ext_id, **fields))
        assert record is not None
        created.append(record)
    return created


async def test_list_operations_newest_first_with_paging(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    a, b, c, d, e = await store.run(_history(client, player))
    assert await one(store, ops.ListOperations()) == ([e, d, c, b, a], 5)
    assert await one(store, ops.ListOperations(oldest_first=True)) == ([a, b, c, d, e], 5)
    assert await one(store, ops.ListOperations(limit=2)) == ([e, d], 5)
    assert await one(store, ops.ListOperations(offset=2, limit=2)) == ([c, b], 5)
    assert await one(store, ops.ListOperations(offset=4, limit=2)) == ([a], 5)
    assert await one(store, ops.ListOperations(offset=9)) == ([], 5)
    assert await one(store, ops.ListOperations(offset=1, limit=2, oldest_first=True)) == (
        [b, c],
        5,
    )


async def test_list_operations_filters(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    await store.run(_history(client, player))
    other = await one(store, ops.InsertPlayer(client.id, "p-2", "EUR", "", NOW_MS))
    assert other is not None
    f = await one(store, insert(client, other, "f", at_ms=NOW_MS + 5000))
    assert f is not None

    async def page(**filters: Any) -> tuple[list[str], int]:
        records, total = await one(store, ops.ListOperations(oldest_first=True, **filters))
        return [r.ext_id for r in records], total

    assert await page(client_id=client.id) == (["a", "b", "c", "d", "e", "f"], 6)
    assert await page(client_id=client.id + 1000) == ([], 0)
    assert await page(player_id=other.id) == (["f"], 1)
    assert await page(player_id=player.id, limit=2) == (["a", "b"], 5)
    assert await page(ns="admin") == (["d"], 1)
    assert await page(ns="wire", player_id=player.id) == (["a", "b", "c", "e"], 4)
    assert await page(kinds=("deposit", "transfer")) == (["b", "d"], 2)
    assert await page(kinds=()) == ([], 0)
    assert await page(states=(OpState.HELD, OpState.PENDING)) == (["a", "b", "f"], 3)
    assert await page(states=(OpState.COMPLETED,)) == (["d"], 1)
    assert await page(since_ms=NOW_MS + 2000) == (["c", "d", "e", "f"], 4)
    assert await page(until_ms=NOW_MS + 2000) == (["a", "b"], 2)
    assert await page(since_ms=NOW_MS + 1000, until_ms=NOW_MS + 3000) == (["b", "c", "d"], 3)
    assert await page(kinds=("withdraw",), states=(OpState.HELD, OpState.ROLLED_BACK)) == (
        ["a", "e", "f"],
        3,
    )


async def test_list_operations_updated_before(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    a, b, _, _, _ = await store.run(_history(client, player))
    await one(store, ops.UpdateOperation(a.id, OpState.CONFIRMED, NOW_MS + 10_000))
    records, total = await one(
        store,
        ops.ListOperations(
            states=(OpState.HELD, OpState.PENDING), updated_before_ms=NOW_MS + 5_000
        ),
    )
    assert (records, total) == ([b], 1)
    records, total = await one(
        store, ops.ListOperations(updated_before_ms=NOW_MS + 1000, oldest_first=True)
    )
    assert [r.ext_id for r in records] == []
    records, total = await one(
        store, ops.ListOperations(updated_before_ms=NOW_MS + 1001, oldest_first=True)
    )
    assert [r.ext_id for r in records] == ["b"]
    assert total == 1

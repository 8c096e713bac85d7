"""Contract: the worker's tables (reconciliation decisions, game-side settlements)."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from gamewallet.core.states import OpState
from gamewallet.store import ops
from gamewallet.store.port import Store, do
from gamewallet.store.records import (
    ClientRecord,
    PlayerRecord,
    ReconciliationRecord,
    SettlementRecord,
)

R = TypeVar("R")
NOW_MS = 1_767_225_600_000


async def one(store: Store, op: ops.Op[R]) -> R:
    """Run a single request in its own transaction."""
    return await store.run(do(op))


# --- reconciliation decisions ----------------------------------------------------------------


async def _operation(store: Store, client: ClientRecord, player: PlayerRecord, ext_id: str) -> int:
    record = await one(
        store,
        ops.InsertOperation(
            client.id, "wire", ext_id, "withdraw", player.id, "EUR", 100, 0, OpState.HELD, NOW_MS
        ),
    )
    assert record is not None
    return record.id


async def test_reconciliation_decisions_round_trip(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    operation = await _operation(store, client, player, "w-1")
    first = await one(
        store,
        ops.InsertReconciliation(
            client.id, operation, "w-1", "withdraw", NOW_MS, None, "none", error="timeout ✗"
        ),
    )
    second = await one(
        store,
        ops.InsertReconciliation(
            client.id, operation, "w-1", "withdraw", NOW_MS + 1, "CONFIRMED", "confirm"
        ),
    )
    assert 0 < first < second
    page, total = await one(store, ops.ListReconciliations())
    assert total == 2
    assert page == [
        ReconciliationRecord(
            second, client.id, operation, "w-1", "withdraw", NOW_MS + 1, "CONFIRMED", "confirm"
        ),
        ReconciliationRecord(
            first, client.id, operation, "w-1", "withdraw", NOW_MS, None, "none", "timeout ✗"
        ),
    ]


async def test_list_reconciliations_filters_and_pages(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    a = await _operation(store, client, player, "a")
    b = await _operation(store, client, player, "b")
    ids = [
        await one(
            store,
            ops.InsertReconciliation(client.id, operation, "x", "withdraw", NOW_MS, None, "none"),
        )
        for operation in (a, b, a, b, a)
    ]

    async def page(**filters: Any) -> tuple[list[int], int]:
        records, total = await one(store, ops.ListReconciliations(**filters))
        return [r.id for r in records], total

    assert await page() == ([ids[4], ids[3], ids[2], ids[1], ids[0]], 5)
    assert await page(operation_id=a) == ([ids[4], ids[2], ids[0]], 3)
    assert await page(operation_id=b, limit=1) == ([ids[3]], 2)
    assert await page(client_id=client.id, offset=3, limit=10) == ([ids[1], ids[0]], 5)
    assert await page(client_id=client.id + 1000) == ([], 0)


# --- game-side settlements -------------------------------------------------------------------


def new_settlement(ext_id: str = "s-1", **overrides: Any) -> ops.InsertSettlement:
    fields: dict[str, Any] = {
        "wallet": "https://wallet.example/api",
        "ext_id": ext_id,
        "kind": "withdraw",
        "token": "tok-1",
        "amount_minor": 12_500,
        "currency": "EUR",
        "now_ms": NOW_MS,
        "detail": {"round": "r-1", "名": "✓"},
    }
    fields.update(overrides)
    return ops.InsertSettlement(**fields)


async def test_insert_and_get_settlement(store: Store) -> None:
    created = await one(store, new_settlement())
    assert created == SettlementRecord(
        id=created.id if created else 0,
        wallet="https://wallet.example/api",
        ext_id="s-1",
        kind="withdraw",
        token="tok-1",
        amount_minor=12_500,
        currency="EUR",
        decision=None,
        reason=None,
        outcome=None,
        created_at_ms=NOW_MS,
        detail={"round": "r-1", "名": "✓"},
    )
    assert created is not None
    assert await one(store, ops.GetSettlement(settlement_id=created.id)) == created
    by_key = ops.GetSettlement(wallet="https://wallet.example/api", ext_id="s-1", lock=True)
    assert await one(store, by_key) == created
    assert await one(store, ops.GetSettlement(settlement_id=created.id + 100)) is None
    assert await one(store, ops.GetSettlement(wallet="other", ext_id="s-1")) is None


async def test_settlement_key_is_wallet_and_ext_id(store: Store) -> None:
    first = await one(store, new_settlement())
    assert first is not None
    assert await one(store, new_settlement(kind="deposit", amount_minor=1)) is None
    other_wallet = await one(store, new_settlement(wallet="https://other.example"))
    other_id = await one(store, new_settlement("s-2"))
    assert other_wallet is not None
    assert other_id is not None
    assert len({first.id, other_wallet.id, other_id.id}) == 3
    assert await one(store, ops.GetSettlement(settlement_id=first.id)) == first


async def test_update_settlement_sets_fields_and_merges_detail(store: Store) -> None:
    created = await one(store, new_settlement())
    assert created is not None
    decided = await one(
        store,
        ops.UpdateSettlement(
            created.id,
            {
                "decision": "rollback",
                "reason": "game crashed",
                "decided_at_ms": NOW_MS + 5,
                "detail": {"round": "r-2", "extra": [1]},
            },
        ),
    )
    assert (decided.decision, decided.reason, decided.decided_at_ms) == (
        "rollback",
        "game crashed",
        NOW_MS + 5,
    )
    assert decided.detail == {"round": "r-2", "名": "✓", "extra": [1]}
    assert decided.outcome is None
    settled = await one(
        store,
        ops.UpdateSettlement(created.id, {"outcome": "rolled_back", "settled_at_ms": NOW_MS + 9}),
    )
    assert (settled.outcome, settled.settled_at_ms, settled.decision) == (
        "rolled_back",
        NOW_MS + 9,
        "rollback",
    )
    assert await one(store, ops.GetSettlement(settlement_id=created.id)) == settled


@pytest.mark.parametrize(
    "bad",
    [{"kind": "bet"}, {"amount_minor": 0}, {"amount_minor": -5}],
)
async def test_settlement_insert_checks(store: Store, bad: dict[str, Any]) -> None:
    with pytest.raises(AssertionError):
        await one(store, new_settlement(**bad))
    assert (
        await one(store, ops.GetSettlement(wallet="https://wallet.example/api", ext_id="s-1"))
        is None
    )


@pytest.mark.parametrize("bad", [{"decision": "maybe"}, {"outcome": "confirm"}])
async def test_settlement_update_checks(store: Store, bad: dict[str, Any]) -> None:
    created = await one(store, new_settlement())
    assert created is not None
    with pytest.raises(AssertionError):
        await one(store, ops.UpdateSettlement(created.id, bad))
    assert await one(store, ops.GetSettlement(settlement_id=created.id)) == created

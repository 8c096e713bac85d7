"""Contract: the operator-side transfer records (insert, get, compare-and-set update, list)."""

from __future__ import annotations

import pytest

from gamewallet.store.port import Store, UseCase, do
from gamewallet.store.transfer_ops import (
    GetOperatorTransfer,
    InsertOperatorTransfer,
    ListOperatorTransfers,
    OperatorTransferRecord,
    UpdateOperatorTransfer,
)

T0 = 1_767_225_600_000
HRG = "hrgag@http://127.0.0.1:9"


async def insert(
    store: Store,
    transfer_id: str,
    *,
    protocol: str = "hrg",
    counterparty: str = HRG,
    user_id: str = "u1",
    kind: str = "deposit",
    amount_minor: int | None = 1_500_000,
    free_minor: int = 0,
    remark: str = "",
    now_ms: int = T0,
) -> OperatorTransferRecord | None:
    op = InsertOperatorTransfer(
        protocol, counterparty, transfer_id, user_id, kind, amount_minor, free_minor, remark, now_ms
    )
    return await store.run(do(op))


async def test_insert_writes_a_pending_record(store: Store) -> None:
    record = await insert(
        store, "T1", kind="withdraw", amount_minor=-(10**15), free_minor=-5, remark="出金 ✓"
    )
    assert record == OperatorTransferRecord(
        id=record.id if record else 0,
        protocol="hrg",
        counterparty=HRG,
        transfer_id="T1",
        user_id="u1",
        kind="withdraw",
        amount_minor=-(10**15),
        free_minor=-5,
        remark="出金 ✓",
        state="pending",
        attempts=0,
        last_error=None,
        result=None,
        created_at_ms=T0,
        updated_at_ms=T0,
        last_sent_at_ms=None,
    )
    assert record is not None
    assert record.id > 0


async def test_the_id_is_unique_per_protocol_and_counterparty(store: Store) -> None:
    first = await insert(store, "T1")
    assert first is not None
    assert await insert(store, "T1", amount_minor=7) is None  # the key decides, not the content
    other_party = await insert(store, "T1", counterparty="other@http://127.0.0.1:9")
    other_protocol = await insert(store, "T1", protocol="jdb")
    assert other_party is not None
    assert other_protocol is not None
    assert len({first.id, other_party.id, other_protocol.id}) == 3
    stored = await store.run(do(GetOperatorTransfer(record_id=first.id)))
    assert stored == first  # the refused insert changed nothing


async def test_withdraw_everything_has_no_amount(store: Store) -> None:
    record = await insert(store, "ALL", kind="withdraw", amount_minor=None)
    assert record is not None
    again = await store.run(
        do(GetOperatorTransfer(protocol="hrg", counterparty=HRG, transfer_id="ALL"))
    )
    assert again is not None
    assert again.amount_minor is None


async def test_get_by_id_and_by_key(store: Store) -> None:
    record = await insert(store, "T2")
    assert record is not None
    by_key = GetOperatorTransfer(protocol="hrg", counterparty=HRG, transfer_id="T2")
    assert await store.run(do(by_key)) == record
    assert await store.run(do(GetOperatorTransfer(record_id=record.id))) == record
    assert await store.run(do(GetOperatorTransfer(record_id=record.id + 100))) is None
    missing = GetOperatorTransfer(protocol="hrg", counterparty=HRG, transfer_id="nope")
    assert await store.run(do(missing)) is None


async def test_update_counts_sends_and_keeps_errors(store: Store) -> None:
    record = await insert(store, "T3")
    assert record is not None
    sent = await store.run(do(UpdateOperatorTransfer(record.id, T0 + 10, sent=True)))
    assert sent is not None
    assert (sent.attempts, sent.last_sent_at_ms, sent.updated_at_ms) == (1, T0 + 10, T0 + 10)
    noted = await store.run(
        do(UpdateOperatorTransfer(record.id, T0 + 20, last_error="timed out: ReadTimeout"))
    )
    assert noted is not None
    assert (noted.attempts, noted.last_sent_at_ms, noted.last_error) == (
        1,
        T0 + 10,
        "timed out: ReadTimeout",
    )
    again = await store.run(do(UpdateOperatorTransfer(record.id, T0 + 30, sent=True)))
    assert again is not None
    assert (again.attempts, again.last_sent_at_ms, again.last_error) == (
        2,
        T0 + 30,
        "timed out: ReadTimeout",  # None keeps the last error
    )
    assert again.state == "pending"
    assert again.result is None


async def test_settling_is_a_compare_and_set(store: Store) -> None:
    record = await insert(store, "T4")
    assert record is not None
    result = {"amount_minor": 1_500_000, "balance_minor": 9, "pid": 42, "note": "ok ✓"}
    settled = await store.run(
        do(UpdateOperatorTransfer(record.id, T0 + 5, state="succeeded", result=result))
    )
    assert settled is not None
    assert (settled.state, settled.result, settled.updated_at_ms) == ("succeeded", result, T0 + 5)
    # Once settled, nothing changes it: neither another outcome nor a note.
    for late in (
        UpdateOperatorTransfer(record.id, T0 + 6, state="failed", last_error="4004 not found"),
        UpdateOperatorTransfer(record.id, T0 + 7, sent=True),
    ):
        assert await store.run(do(late)) is None
    stored = await store.run(do(GetOperatorTransfer(record_id=record.id)))
    assert stored == settled
    assert await store.run(do(UpdateOperatorTransfer(record.id + 99, T0))) is None


async def test_a_failed_use_case_leaves_no_record(store: Store) -> None:
    def use_case() -> UseCase[None]:
        made = yield from do(
            InsertOperatorTransfer("jdb", "jb/ag@x", "S1", "u1", "deposit", 10, 0, "", T0)
        )
        assert made is not None
        raise RuntimeError("the caller's transaction fails")

    with pytest.raises(RuntimeError):
        await store.run(use_case())
    assert await insert(store, "S1", protocol="jdb", counterparty="jb/ag@x") is not None


async def test_list_filters_pages_and_counts(store: Store) -> None:
    ids: list[int] = []
    for n in range(5):
        made = await insert(store, f"L{n}", user_id="u1" if n % 2 == 0 else "u2")
        assert made is not None
        ids.append(made.id)
    await insert(store, "J1", protocol="jdb", counterparty="jb/ag@x")
    await store.run(do(UpdateOperatorTransfer(ids[1], T0 + 1, state="failed")))

    page, total = await store.run(
        do(ListOperatorTransfers(protocol="hrg", states=("pending",), limit=2))
    )
    assert [r.transfer_id for r in page] == ["L0", "L2"]
    assert total == 4
    rest, total_after = await store.run(
        do(ListOperatorTransfers(protocol="hrg", states=("pending",), after_id=page[-1].id))
    )
    assert [r.transfer_id for r in rest] == ["L3", "L4"]
    assert total_after == 4  # the total ignores the cursor
    mine, count = await store.run(do(ListOperatorTransfers(user_id="u2", counterparty=HRG)))
    assert ([r.transfer_id for r in mine], count) == (["L1", "L3"], 2)
    everything, count_all = await store.run(do(ListOperatorTransfers()))
    assert count_all == 6
    assert [r.id for r in everything] == sorted(r.id for r in everything)
    none, zero = await store.run(do(ListOperatorTransfers(states=("succeeded",))))
    assert (none, zero) == ([], 0)

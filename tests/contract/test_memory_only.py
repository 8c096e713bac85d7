"""What only the memory store promises beyond the contract: a complete executor table, the
undo journal, and use cases that never interleave."""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Any

import pytest

from gamewallet.core.states import OpState
from gamewallet.store import admin_ops, ops, transfer_ops
from gamewallet.store.memory import MemoryStore
from gamewallet.store.port import UseCase, do

NOW_MS = 1_767_225_600_000


def test_every_request_type_has_an_executor() -> None:
    requests = {
        value
        # The back-office and operator-transfer requests live in their own modules.
        for module in (ops, admin_ops, transfer_ops)
        for _, value in inspect.getmembers(module, inspect.isclass)
        if issubclass(value, ops.Op) and value is not ops.Op
    }
    assert requests
    assert requests == set(MemoryStore()._executors)


@dataclass(frozen=True)
class NotARequest(ops.Op[None]):
    pass


async def test_an_unknown_request_is_a_type_error_and_rolls_back() -> None:
    store = MemoryStore()

    def use_case() -> UseCase[None]:
        yield from do(ops.SetMetaIfAbsent("k", "v"))
        yield from do(NotARequest())

    with pytest.raises(TypeError, match="not a store request"):
        await store.run(use_case())
    assert await store.run(do(ops.GetMeta("k"))) is None


async def test_a_failing_request_closes_the_use_case() -> None:
    store = MemoryStore()
    cleaned: list[bool] = []

    def use_case() -> UseCase[None]:
        try:
            yield from do(ops.SetMetaIfAbsent("k", "v"))
            yield from do(ops.UpdateOperation(404, OpState.CONFIRMED, NOW_MS))
        finally:
            cleaned.append(True)

    with pytest.raises(AssertionError):
        await store.run(use_case())
    assert cleaned == [True]
    assert store._meta == {}
    assert store._journal == []


async def test_ids_of_a_rolled_back_use_case_are_reused() -> None:
    store = MemoryStore()

    def enqueue_then_fail() -> UseCase[int]:
        outbox_id = yield from do(ops.Enqueue("t", None, None, {}, NOW_MS, NOW_MS))
        raise RuntimeError(outbox_id)

    with pytest.raises(RuntimeError):
        await store.run(enqueue_then_fail())
    assert await store.run(do(ops.Enqueue("t", None, None, {}, NOW_MS, NOW_MS))) == 1


async def test_use_cases_never_interleave() -> None:
    store = MemoryStore()
    await store.run(do(ops.SetMetaIfAbsent("n", "0")))

    def increment() -> UseCase[None]:
        value = yield from do(ops.GetMeta("n"))
        assert value is not None
        # Read-modify-write through a fresh key: a lost update would show as a duplicate.
        claimed = yield from do(ops.SetMetaIfAbsent(f"seen-{value}", "x"))
        assert claimed == "x"
        store._meta["n"] = str(int(value) + 1)  # bypasses the journal: fine, no rollback here

    await asyncio.gather(*(store.run(increment()) for _ in range(50)))
    assert await store.run(do(ops.GetMeta("n"))) == "50"


async def test_returned_config_is_a_copy() -> None:
    store = MemoryStore()
    client = await store.run(
        do(ops.InsertClient("hrg", "a", None, None, "CNY", None, 1, {"k": [1]}, NOW_MS))
    )
    assert client is not None
    config: Any = client.config
    config["k"].append(2)
    again = await store.run(do(ops.GetClient(client_id=client.id)))
    assert again is not None
    assert again.config == {"k": [1]}

"""The client cache: hits cost no database read; misses reload, but not on every request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gamewallet.service.admin import NewClient, create_client
from gamewallet.service.common import FakeClock
from gamewallet.service.context import MISS_RELOAD_INTERVAL_MS, ClientDirectory
from gamewallet.store import ops
from gamewallet.store.memory import MemoryStore
from gamewallet.store.port import StoreError, UseCase
from gamewallet.store.records import ClientRecord


class CountingStore(MemoryStore):
    """A memory store that counts how often every client is listed."""

    lists = 0

    async def run(self, use_case: UseCase[Any]) -> Any:
        return await super().run(self._count(use_case))

    def _count(self, use_case: UseCase[Any]) -> UseCase[Any]:
        result = None
        request = next(use_case)
        while True:
            if isinstance(request, ops.ListClients):
                self.lists += 1
            result = yield request
            try:
                request = use_case.send(result)
            except StopIteration as stop:
                return stop.value


async def test_unknown_names_reload_at_most_once_per_interval() -> None:
    store = CountingStore()
    clock = FakeClock()
    directory = ClientDirectory(store, clock, ttl_s=60)
    await directory.reload()
    assert store.lists == 1
    for _ in range(50):
        assert await directory.by_username("hrg", "nobody") is None
    assert store.lists == 1  # a burst of unknown names costs no reads

    await store.run(create_client(NewClient("hrg", "ag", "cid", "s", "THB"), clock.now_ms(), b"k"))
    clock.advance(MISS_RELOAD_INTERVAL_MS / 1000)
    found = await directory.by_username("hrg", "cid")
    assert found is not None
    assert found.name == "ag"
    assert store.lists == 2
    for _ in range(10):
        assert await directory.by_name("hrg", "ag") is not None
    assert store.lists == 2  # hits are served from memory


async def test_disabled_clients_are_not_returned() -> None:
    store = MemoryStore()
    clock = FakeClock()
    record = await _add_jdb(store, clock)
    directory = ClientDirectory(store, clock, ttl_s=0)
    assert await directory.by_name("jdb", "jb") is not None
    await store.run(_disable(record.id))
    clock.advance(1)
    assert await directory.by_name("jdb", "jb") is None


def _disable(client_id: int) -> UseCase[None]:
    yield ops.UpdateClient(client_id, {"disabled": True})


class GatedStore(CountingStore):
    """A counting store whose client reads wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def run(self, use_case: UseCase[Any]) -> Any:
        await self.gate.wait()
        if self.fail:
            use_case.close()
            raise StoreError("the database is away")
        return await super().run(use_case)


async def _add_jdb(store: MemoryStore, clock: FakeClock) -> ClientRecord:
    """The JDB client ``jb`` (straight into the store, past any gate)."""
    new = NewClient("jdb", "jb", None, None, "RMB")
    record: ClientRecord = await MemoryStore.run(store, create_client(new, clock.now_ms(), b"k"))
    return record


async def _background_reload_over(directory: ClientDirectory) -> None:
    for _ in range(100):
        if directory._refreshing is None:
            return
        await asyncio.sleep(0)
    raise AssertionError("the background reload did not end")


async def _rows_six_seconds_old() -> tuple[GatedStore, FakeClock, ClientDirectory]:
    """A directory with a 10 s TTL that loaded ``jb`` 6 s ago: due for a background reload."""
    store = GatedStore()
    clock = FakeClock()
    await _add_jdb(store, clock)
    directory = ClientDirectory(store, clock, ttl_s=10)
    await directory.reload()
    clock.advance(6)
    return store, clock, directory


async def test_callers_that_find_the_rows_expired_together_share_one_read() -> None:
    store = GatedStore()
    clock = FakeClock()
    await store.run(create_client(NewClient("hrg", "ag", "cid", "s", "THB"), clock.now_ms(), b"k"))
    directory = ClientDirectory(store, clock, ttl_s=5)
    await directory.reload()
    clock.advance(6)  # past the whole TTL: every caller must wait for new rows
    store.gate.clear()
    callers = [asyncio.create_task(directory.by_username("hrg", "cid")) for _ in range(64)]
    await asyncio.sleep(0)
    store.gate.set()
    found = await asyncio.gather(*callers)
    assert all(client is not None and client.name == "ag" for client in found)
    # The first load; the read the first caller began; one more, begun after the other 63
    # asked, for all of them (the first read may predate what they must see). Not 64.
    assert directory.reads == 3
    assert store.lists == 3


async def test_a_caller_that_asked_during_a_read_gets_a_read_that_began_after_it_asked() -> None:
    store = GatedStore()
    clock = FakeClock()
    directory = ClientDirectory(store, clock, ttl_s=60)
    store.gate.clear()
    first = asyncio.create_task(directory.reload())  # reads before the client exists
    await asyncio.sleep(0)
    await MemoryStore.run(
        store, create_client(NewClient("hrg", "ag", "cid", "s", "THB"), clock.now_ms(), b"k")
    )
    second = asyncio.create_task(directory.reload())  # asked after the client was created
    third = asyncio.create_task(directory.reload())
    await asyncio.sleep(0)
    store.gate.set()
    await asyncio.gather(first, second, third)
    assert directory.reads == 2  # the second and third share the read after the first
    found = await directory.by_username("hrg", "cid")
    assert found is not None


async def test_rows_half_a_ttl_old_are_reloaded_in_the_background_without_waiting() -> None:
    store = GatedStore()
    clock = FakeClock()
    record = await _add_jdb(store, clock)
    directory = ClientDirectory(store, clock, ttl_s=10)
    await directory.reload()
    await MemoryStore.run(store, _disable(record.id))
    clock.advance(4)
    assert await directory.by_name("jdb", "jb") is not None  # fresh enough: no read
    assert directory.reads == 1
    clock.advance(2)  # 6 s: more than half the TTL
    store.gate.clear()  # the background read cannot finish yet
    for _ in range(20):
        # Served at once from the rows it has (still enabled there), one read started.
        assert await asyncio.wait_for(directory.by_name("jdb", "jb"), 1) is not None
    assert directory.reads == 2
    store.gate.set()
    await _background_reload_over(directory)
    assert await directory.by_name("jdb", "jb") is None  # the background read saw it disabled
    assert directory.reads == 2


async def test_a_failed_background_reload_keeps_the_rows_and_the_ttl_still_holds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, clock, directory = await _rows_six_seconds_old()
    store.fail = True
    assert await directory.by_name("jdb", "jb") is not None
    await _background_reload_over(directory)
    assert "could not be reloaded in the background" in caplog.text
    clock.advance(5)  # 11 s: past the TTL, the caller now waits for a read, which fails
    with pytest.raises(StoreError):
        await directory.by_name("jdb", "jb")
    store.fail = False
    assert await directory.by_name("jdb", "jb") is not None


async def test_close_stops_a_background_reload() -> None:
    store, _clock, directory = await _rows_six_seconds_old()
    store.gate.clear()
    assert await directory.by_name("jdb", "jb") is not None
    task = directory._refreshing
    assert task is not None
    await directory.close()
    assert task.cancelled()
    assert directory._refreshing is None

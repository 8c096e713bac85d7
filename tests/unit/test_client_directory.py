"""The client cache: hits cost no database read; misses reload, but not on every request."""

from __future__ import annotations

from typing import Any

from gamewallet.service.admin import NewClient, create_client
from gamewallet.service.common import FakeClock
from gamewallet.service.context import MISS_RELOAD_INTERVAL_MS, ClientDirectory
from gamewallet.store import ops
from gamewallet.store.memory import MemoryStore
from gamewallet.store.port import UseCase


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
    record = await store.run(
        create_client(NewClient("jdb", "jb", None, None, "RMB"), clock.now_ms(), b"k")
    )
    directory = ClientDirectory(store, clock, ttl_s=0)
    assert await directory.by_name("jdb", "jb") is not None
    await store.run(_disable(record.id))
    clock.advance(1)
    assert await directory.by_name("jdb", "jb") is None


def _disable(client_id: int) -> UseCase[None]:
    yield ops.UpdateClient(client_id, {"disabled": True})

"""What every edge (protocol routes, admin, CLI, worker) gets: the store, the clock, the
settings, the installation key and a cache of client credentials.

The client directory caches client rows for ``client_cache_ttl_s`` so that authenticating
a call costs no database round trip. A miss reloads at once (a new client works
immediately), but at most once per ``MISS_RELOAD_INTERVAL_MS``, so unauthenticated callers
naming unknown clients cannot turn every request into a database read. A disabled client
stops working within the TTL.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from gamewallet.service.admin import installation_key
from gamewallet.service.common import Clock, SystemClock
from gamewallet.settings import Settings
from gamewallet.store import ops
from gamewallet.store.port import Store, do
from gamewallet.store.records import ClientRecord

#: Least time between two reloads caused by unknown names.
MISS_RELOAD_INTERVAL_MS = 1000


@dataclass
class ClientDirectory:
    """Clients by (protocol, name) and (protocol, username), reloaded every TTL."""

    store: Store
    clock: Clock
    ttl_s: float
    _by_name: dict[tuple[str, str], ClientRecord] = field(default_factory=dict)
    _by_username: dict[tuple[str, str], ClientRecord] = field(default_factory=dict)
    _loaded_at_ms: int = -(10**15)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def reload(self) -> None:
        """Read every client from the database."""
        async with self._lock:
            clients = await self.store.run(do(ops.ListClients()))
            self._by_name = {(c.protocol, c.name): c for c in clients}
            self._by_username = {
                (c.protocol, c.username): c for c in clients if c.username is not None
            }
            self._loaded_at_ms = self.clock.now_ms()

    async def _fresh(self) -> None:
        if self.clock.now_ms() - self._loaded_at_ms > self.ttl_s * 1000:
            await self.reload()

    async def _reload_on_miss(self) -> bool:
        """Reload after a miss unless one happened very recently; True if reloaded."""
        if self.clock.now_ms() - self._loaded_at_ms < MISS_RELOAD_INTERVAL_MS:
            return False
        await self.reload()
        return True

    async def by_name(self, protocol: str, name: str) -> ClientRecord | None:
        """An enabled client by its name (HRG agentId, JDB dc, seamless name)."""
        await self._fresh()
        client = self._by_name.get((protocol, name))
        if client is None and await self._reload_on_miss():
            client = self._by_name.get((protocol, name))
        return client if client is not None and not client.disabled else None

    async def by_username(self, protocol: str, username: str) -> ClientRecord | None:
        """An enabled client by its Basic-auth user name."""
        await self._fresh()
        client = self._by_username.get((protocol, username))
        if client is None and await self._reload_on_miss():
            client = self._by_username.get((protocol, username))
        return client if client is not None and not client.disabled else None


class Services:
    """The composition of one process: the store, clock, settings, key and client cache.

    Built synchronously (so an ASGI app can be made before the event loop runs);
    :meth:`start` opens the store and loads the key and the clients; :meth:`close` ends it.
    """

    def __init__(self, settings: Settings, store: Store, clock: Clock | None = None) -> None:
        self.settings = settings
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.key = b""
        self.clients = ClientDirectory(store, self.clock, settings.client_cache_ttl_s)
        self._started = False

    async def start(self, *, start_store: bool = True) -> None:
        """Open the store (unless already open), load the installation key and clients."""
        if start_store:
            await self.store.start()
        if self.settings.secret_key:
            self.key = hashlib.sha256(self.settings.secret_key.encode()).digest()
        else:
            self.key = await self.store.run(installation_key())
        await self.clients.reload()
        self._started = True

    async def close(self) -> None:
        """Close the store."""
        await self.store.close()

"""What every edge (protocol routes, admin, CLI, worker) gets: the store, the clock, the
settings, the installation key and a cache of client credentials.

The client directory caches client rows for ``client_cache_ttl_s`` so that authenticating
a call costs no database round trip. A miss reloads at once (a new client works
immediately), but at most once per ``MISS_RELOAD_INTERVAL_MS``, so unauthenticated callers
naming unknown clients cannot turn every request into a database read. A disabled client
stops working within the TTL.

No caller waits for the cache under steady traffic: once the cached rows are half a TTL old,
the first call starts one reload in the background and goes on with the rows it has; only
rows older than the whole TTL (an idle process, or a failing database) make a call wait. And
reloads are never repeated for callers that asked together: a caller that waited for a
reload under way is served by the next one that begins, and every other waiter by that one.
(Before both, the 64 calls in flight when the TTL ran out each reloaded in turn behind one
lock, one database round trip apiece: every 5 s a burst of calls waited up to 650 ms.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass, field

from gamewallet.service.admin import installation_key
from gamewallet.service.common import Clock, SystemClock
from gamewallet.service.ratelimit import SharedBuckets
from gamewallet.settings import Settings
from gamewallet.store import ops
from gamewallet.store.port import Store, do
from gamewallet.store.records import ClientRecord

log = logging.getLogger(__name__)

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
    #: Database reads of the client list begun so far (also diagnostics and tests), and the
    #: number of the last one that succeeded.
    reads: int = 0
    _loaded_read: int = 0
    #: The background reload under way, if any (a strong reference keeps the task alive).
    _refreshing: asyncio.Task[None] | None = None

    async def reload(self) -> None:
        """Read every client from the database; on return the rows are at least as new as
        the database was when this was called.

        Callers that ask while a read is under way wait for it and then share one more read;
        the rows the first of them reads began after every one of them asked.
        """
        asked = self.reads
        async with self._lock:
            if self._loaded_read > asked:
                return  # a read that began after this was asked has succeeded meanwhile
            self.reads += 1
            read = self.reads
            clients = await self.store.run(do(ops.ListClients()))
            self._by_name = {(c.protocol, c.name): c for c in clients}
            self._by_username = {
                (c.protocol, c.username): c for c in clients if c.username is not None
            }
            self._loaded_at_ms = self.clock.now_ms()
            self._loaded_read = read

    async def close(self) -> None:
        """Stop a background reload under way (on shutdown)."""
        task, self._refreshing = self._refreshing, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _fresh(self) -> None:
        age_ms = self.clock.now_ms() - self._loaded_at_ms
        ttl_ms = self.ttl_s * 1000
        if age_ms > ttl_ms:
            await self.reload()
        elif age_ms > ttl_ms / 2 and self._refreshing is None:
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        """A reload in the background: the callers go on with the rows they have."""
        try:
            await self.reload()
        except Exception:  # a failed read is retried by a later call
            # The rows stay as they were; once they are a whole TTL old, calls reload and wait.
            log.warning("the client list could not be reloaded in the background", exc_info=True)
        finally:
            self._refreshing = None

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
        #: The token buckets this process shares with the others (GAMEWALLET_RATE_LIMIT_FILE).
        self.rate_buckets = (
            SharedBuckets(settings.rate_limit_file) if settings.rate_limit_file else None
        )
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
        """Close the store (after the client directory's background reload, if any)."""
        await self.clients.close()
        await self.store.close()
        if self.rate_buckets is not None:
            self.rate_buckets.close()
            self.rate_buckets = None

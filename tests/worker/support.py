"""Shared pieces of the worker tests: the wallet set-up, constants and small helpers.

:func:`make_wallet` starts :class:`Services` with a seamless client (``game``), one funded EUR
player (``alice``, 1000.00) and a session token, plus the full ASGI app, reachable in-process
through :meth:`Wallet.transport` (no socket is opened).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from litestar import Litestar

from gamewallet.clients.seamless import SeamlessClient
from gamewallet.protocols.seamless.routes import build_router
from gamewallet.service import admin, seamless
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import open_store, ops
from gamewallet.store.port import Store, do
from gamewallet.store.postgres import PostgresStore
from gamewallet.store.records import ClientRecord, OperationRecord, PlayerRecord
from gamewallet.store.sqlite import SqliteStore

WALLET_BASE = "http://127.0.0.1:9"  # never dialled: the ASGI transport answers in-process
GAME_BASE = "http://127.0.0.1:10"
GAME_USER = "game-user"
GAME_PASSWORD = "game-pass"
WALLET_USER_AT_GAME = "wallet-at-game"
WALLET_PASSWORD_AT_GAME = "wallet-secret"
PAYMENT_SECRET = "MKiLHWZvGPTq2258"  # the vendor's example key
START_MINOR = 1000_0000  # 1000.00 at scale 4
SESSION_TTL_S = 4 * 3600


def _admin(url: str, statement: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(url, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    # A private loop: this runs from sync fixtures, outside the test's own loop.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()


@contextlib.contextmanager
def extra_database(admin_url: str) -> Iterator[str]:
    """A new, migrated PostgreSQL database on the server of ``admin_url``; dropped after."""
    from gamewallet.store import migrate

    name = f"gw_extra_{uuid.uuid4().hex}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        url = urlunsplit(urlsplit(admin_url)._replace(path="/" + name))
        migrate.upgrade(url)
        yield url
    finally:
        _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def asgi(app: Litestar) -> httpx.ASGITransport:
    """An httpx transport that calls ``app`` in-process (no socket, no lifespan)."""
    return httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar's precise ASGI types


async def count_postings(store: Store, operation_id: int) -> int:
    """Postings of one operation, read straight from the database."""
    if isinstance(store, SqliteStore):
        connection = sqlite3.connect(store.path)
        try:
            (count,) = connection.execute(
                "SELECT count(*) FROM postings WHERE operation_id = ?", (operation_id,)
            ).fetchone()
        finally:
            connection.close()
        return int(count)
    assert isinstance(store, PostgresStore)
    pg = await asyncpg.connect(store.url, timeout=10)
    try:
        value = await pg.fetchval(
            "SELECT count(*) FROM postings WHERE operation_id = $1", operation_id
        )
    finally:
        await pg.close()
    return int(value)


@dataclass
class Wallet:
    """The wallet side of a test."""

    services: Services
    app: Litestar
    client: ClientRecord
    token: str

    @property
    def store(self) -> Store:
        return self.services.store

    def transport(self) -> httpx.ASGITransport:
        """An httpx transport that hands requests to the wallet app in-process."""
        return asgi(self.app)

    def seamless_client(self, *, timeout_s: float = 5.0) -> SeamlessClient:
        """The game's client of this wallet."""
        return SeamlessClient(
            WALLET_BASE, GAME_USER, GAME_PASSWORD, timeout_s=timeout_s, transport=self.transport()
        )

    async def player(self) -> PlayerRecord:
        """Alice, with her current balances."""
        return await self.store.run(admin.get_player(self.client, "alice"))

    async def operation(self, ext_id: str) -> OperationRecord | None:
        """The wallet's operation for an mmTransactionId."""
        return await self.store.run(
            do(ops.GetOperation(client_id=self.client.id, ns="wire", ext_id=ext_id))
        )

    async def postings_of(self, operation_id: int) -> int:
        """How many postings an operation has: its ledger effect, counted in the database."""
        return await count_postings(self.store, operation_id)

    async def audit(self) -> list[str]:
        """Every ledger invariant violation (empty = sound)."""
        return await self.store.run(do(ops.Audit()))

    async def set_config(self, **config: object) -> None:
        """Merge ``config`` into the client's config."""
        merged = {**self.client.config, **config}
        updated = await self.store.run(do(ops.UpdateClient(self.client.id, {"config": merged})))
        assert updated is not None
        self.client = updated
        await self.services.clients.reload()


async def make_wallet(url: str, clock: FakeClock) -> Wallet:
    """Start a wallet on ``url`` (migrated) with the test client, player and session."""
    services = Services(Settings(database_url=url, client_cache_ttl_s=0.0), open_store(url), clock)
    await services.start()
    client = await services.store.run(
        admin.create_client(
            admin.NewClient(
                "seamless",
                "game",
                GAME_USER,
                GAME_PASSWORD,
                None,
                None,
                {
                    "integration_url": GAME_BASE,
                    "integration_username": WALLET_USER_AT_GAME,
                    "integration_password": WALLET_PASSWORD_AT_GAME,
                    "payment_secret": PAYMENT_SECRET,
                },
            ),
            clock.now_ms(),
            services.key,
        )
    )
    await services.store.run(
        admin.create_player(client, "alice", "EUR", "Alice", START_MINOR, clock.now_ms())
    )
    session = await services.store.run(
        seamless.open_game_session(client, "alice", SESSION_TTL_S, clock.now_ms())
    )
    await services.clients.reload()
    # Only the seamless router: these tests are about it, and the other protocols' routes are
    # covered (and may be mid-change) elsewhere.
    app = Litestar(route_handlers=[build_router(services)], debug=False)
    return Wallet(services, app, client, session.token)


class Tap(httpx.AsyncBaseTransport):
    """Wraps a transport: records every request path, and can fail on demand.

    ``down``: refuse the connection (nothing reaches the other side). ``lose_answers``: let the
    request through, then lose the answer (the other side applied it; the caller times out).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []
        self.down = False
        self.lose_answers = False
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self.inner.handle_async_request(request)
            if self.lose_answers:
                await response.aread()
                raise httpx.ReadTimeout("answer lost", request=request)
            return response
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()

"""PostgresStore against a real PostgreSQL: every executor, locking, rollback, and the audit.

Each test gets a fresh migrated database (``pg_url`` from tests/conftest.py). Use cases are
small inline generators. Tests about concurrency hold a use case inside its transaction with a
*gate*: a row that a raw connection keeps locked, which the use case then asks to lock too, so
it waits there (transaction open, its own locks held) until the test opens the gate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Generator
from typing import Any

import asyncpg
import pytest

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.ledger import Balance, Bucket, OwnerKind, UnbalancedPosting, shard_of
from gamewallet.core.states import OpState
from gamewallet.store import admin_ops, ops, transfer_ops
from gamewallet.store.migrate import upgrade
from gamewallet.store.ops import (
    Apply,
    Audit,
    ClaimOutbox,
    Delta,
    Enqueue,
    FinishOutbox,
    GetClient,
    GetIdempotency,
    GetMeta,
    GetOperation,
    GetOwnerAccounts,
    GetPlayer,
    GetSession,
    InsertClient,
    InsertOperation,
    InsertPlayer,
    InsertSession,
    ListClients,
    ListOperations,
    ListOutbox,
    ListPlayers,
    MarkSessionUsed,
    PurgeIdempotency,
    RetryOutbox,
    SaveIdempotency,
    SetMetaIfAbsent,
    TryLockKey,
    UpdateClient,
    UpdateOperation,
    UpdatePlayer,
)
from gamewallet.store.port import Store, StoreError, UseCase, do
from gamewallet.store.postgres import PostgresStore
from gamewallet.store.records import ClientRecord, OperationRecord, PlayerRecord, SessionRecord

NOW = 1_700_000_000_000
EUR = "EUR"
TEN = 100_000  # 10.0000 in minor units
WAIT_S = 10.0  # how long a test waits for another transaction to reach a lock


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    await asyncio.to_thread(upgrade, pg_url)
    pg = PostgresStore(pg_url, max_size=6)
    await pg.start()
    try:
        yield pg
    finally:
        await pg.close()


@pytest.fixture
async def raw(pg_url: str, store: PostgresStore) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the same (migrated) database, outside the store."""
    conn = await asyncpg.connect(pg_url)
    try:
        yield conn
    finally:
        await conn.close()


async def run(store: PostgresStore, *requests: ops.Op[Any]) -> list[Any]:
    """Run the requests as one use case; their results in order."""

    def use_case() -> UseCase[list[Any]]:
        results = []
        for request in requests:
            results.append((yield request))  # noqa: PERF401 - a comprehension cannot yield
        return results

    return await store.run(use_case())


async def one(store: PostgresStore, request: ops.Op[Any]) -> Any:
    [result] = await run(store, request)
    return result


async def new_client(store: PostgresStore, name: str = "acme", shards: int = 2) -> ClientRecord:
    client = await one(
        store,
        InsertClient("seamless", name, "user", "hash", None, None, shards, {"a": 1}, NOW),
    )
    assert isinstance(client, ClientRecord)
    return client


async def new_player(
    store: PostgresStore, client: ClientRecord, external_id: str = "p1", nickname: str = ""
) -> PlayerRecord:
    player = await one(store, InsertPlayer(client.id, external_id, EUR, nickname, NOW))
    assert isinstance(player, PlayerRecord)
    return player


def move(
    client: ClientRecord,
    player_id: int,
    ext_id: str,
    amount_minor: int,
    *,
    kind: str,
    check_funds: bool = True,
) -> UseCase[int]:
    """Lock the player, check funds for a debit, claim the id, post against the client."""
    player = yield from do(GetPlayer(player_id=player_id, lock=True))
    assert player is not None
    if kind == "debit" and check_funds and player.cash.balance.available_minor < amount_minor:
        raise WalletError(ErrorCode.INSUFFICIENT_FUNDS)
    operation = yield from do(
        InsertOperation(
            client.id,
            "wire",
            ext_id,
            kind,
            player.id,
            EUR,
            amount_minor,
            0,
            OpState.COMPLETED,
            NOW,
        )
    )
    if operation is None:
        raise WalletError(ErrorCode.ALREADY_COMPLETED)
    [house] = yield from do(
        GetOwnerAccounts(
            OwnerKind.CLIENT,
            client.id,
            EUR,
            client.shards,
            shard=shard_of(player.id, client.shards),
            lock=True,
        )
    )
    sign = -1 if kind == "debit" else 1
    yield from do(
        Apply(
            operation.id,
            (
                Delta(player.cash.id, EUR, sign * amount_minor),
                Delta(house.id, EUR, -sign * amount_minor),
            ),
            NOW,
        )
    )
    return operation.id


async def funded(store: PostgresStore) -> tuple[ClientRecord, PlayerRecord, int]:
    """A client, and a player credited 10.0000 by one completed operation (its id)."""
    client = await new_client(store)
    player = await new_player(store, client)
    operation_id = await store.run(move(client, player.id, "fund", TEN, kind="credit"))
    return client, player, operation_id


async def balance(store: PostgresStore, player_id: int) -> Balance:
    player = await one(store, GetPlayer(player_id=player_id))
    assert isinstance(player, PlayerRecord)
    return player.cash.balance


class Gate:
    """A player row that a raw connection keeps locked until :meth:`open`."""

    def __init__(self, url: str, player_id: int) -> None:
        self.url = url
        self.player_id = player_id
        self.conn: asyncpg.Connection | None = None

    async def close(self) -> None:
        self.conn = await asyncpg.connect(self.url)
        await self.conn.execute("BEGIN")
        await self.conn.execute("SELECT 1 FROM players WHERE id = $1 FOR UPDATE", self.player_id)

    async def open(self) -> None:
        if self.conn is not None:
            await self.conn.execute("ROLLBACK")
            await self.conn.close()
            self.conn = None

    def wait(self) -> Generator[ops.Op[Any], Any, None]:
        """Use-case steps that block until the gate opens."""
        yield from do(GetPlayer(player_id=self.player_id, lock=True))


async def gate_for(url: str, store: PostgresStore, client: ClientRecord) -> Gate:
    gate_player = await new_player(store, client, "gate")
    gate = Gate(url, gate_player.id)
    await gate.close()
    return gate


async def wait_for_waiters(raw: asyncpg.Connection, count: int) -> None:
    """Wait until ``count`` backends of this database are waiting for a row lock."""
    deadline = time.monotonic() + WAIT_S
    while True:
        waiting = await raw.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting >= count:
            return
        assert time.monotonic() < deadline, f"{waiting} of {count} transactions reached a lock"
        await asyncio.sleep(0.02)


async def is_locked(raw: asyncpg.Connection, table: str, row_id: int) -> bool:
    """Whether another transaction holds a row lock on ``table``'s row ``row_id``."""
    assert table in {"players", "accounts", "operations", "outbox"}
    try:
        async with raw.transaction():
            await raw.execute(
                f"SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE NOWAIT",  # noqa: S608 - whitelist
                row_id,
            )
    except asyncpg.LockNotAvailableError:
        return True
    return False


def count_of(raw: asyncpg.Connection, table: str) -> Any:
    assert table in {"clients", "players", "accounts", "operations", "postings", "outbox"}
    return raw.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - whitelisted name


# --- the port -------------------------------------------------------------------------------------


def test_every_request_type_has_an_executor() -> None:
    requests = {
        value
        for module in (ops, admin_ops, transfer_ops)  # back-office and operator-side modules
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, ops.Op) and value is not ops.Op
    }
    assert len(requests) >= 29
    assert PostgresStore("postgresql://x@localhost/x").handled_ops == requests


def test_is_a_store_and_hides_its_url() -> None:
    store: Store = PostgresStore("postgresql://u:sekrit@localhost/x", max_size=7)
    assert store.kind == "postgresql"
    assert "sekrit" not in repr(store)


async def test_run_before_start_is_a_store_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/none")
    with pytest.raises(StoreError):
        await store.run(do(GetMeta("x")))


async def test_unreachable_database_is_a_store_error_without_secrets() -> None:
    store = PostgresStore("postgresql://postgres:sekrit@127.0.0.1:1/none", command_timeout_s=2)
    with pytest.raises(StoreError) as failure:
        await store.start()
    assert "sekrit" not in str(failure.value)
    await store.close()


async def test_a_use_case_without_requests_returns_its_value(store: PostgresStore) -> None:
    def nothing() -> UseCase[int]:
        yield from ()  # a generator that asks for nothing
        return 42

    assert await store.run(nothing()) == 42


async def test_an_exception_rolls_back_and_propagates_unchanged(
    store: PostgresStore, raw: asyncpg.Connection
) -> None:
    boom = OSError("the use case's own error, not the driver's")

    def failing() -> UseCase[None]:
        yield from do(SetMetaIfAbsent("k", "v"))
        yield from do(InsertClient("hrg", "a", None, None, "EUR", None, 1, {}, NOW))
        raise boom

    with pytest.raises(OSError, match="own error") as failure:
        await store.run(failing())
    assert failure.value is boom
    assert await count_of(raw, "clients") == 0
    assert await one(store, GetMeta("k")) is None


async def test_a_driver_error_becomes_a_store_error_and_rolls_back(
    store: PostgresStore, raw: asyncpg.Connection
) -> None:
    session = SessionRecord("secret-token-value", 999, 999, "session", NOW, NOW)
    with pytest.raises(StoreError) as failure:  # foreign keys: no such client or player
        await run(store, SetMetaIfAbsent("k", "v"), InsertSession(session))
    assert "secret-token-value" not in str(failure.value)
    assert "23503" in str(failure.value)  # the SQLSTATE says what kind of failure it was
    assert await one(store, GetMeta("k")) is None
    # The pool's connection is usable again afterwards.
    assert await one(store, SetMetaIfAbsent("k", "v")) == "v"


# --- clients ----------------------------------------------------------------------------------


async def test_clients(store: PostgresStore) -> None:
    acme = await new_client(store, "acme", shards=3)
    assert acme.config == {"a": 1}
    assert acme.shards == 3
    assert acme.disabled is False
    assert acme.created_at_ms == NOW
    again = InsertClient("seamless", "acme", None, None, None, None, 1, {}, NOW)
    assert await one(store, again) is None
    jdb = await one(store, InsertClient("jdb", "acme", None, None, "CNY", 500, 1, {}, NOW))
    assert jdb is not None
    assert jdb.credit_limit_minor == 500

    assert await one(store, GetClient(client_id=acme.id)) == acme
    assert await one(store, GetClient(protocol="jdb", name="acme")) == jdb
    assert await one(store, GetClient(client_id=acme.id + 100)) is None
    assert await one(store, ListClients()) == [acme, jdb]
    assert await one(store, ListClients(protocol="jdb")) == [jdb]

    changed = await one(
        store, UpdateClient(acme.id, {"config": {"b": [1, 2]}, "disabled": True, "currency": "X"})
    )
    assert changed.config == {"b": [1, 2]}
    assert changed.disabled is True
    assert changed.currency == "X"
    assert await one(store, GetClient(client_id=acme.id)) == changed
    assert await one(store, UpdateClient(acme.id, {})) == changed
    assert await one(store, UpdateClient(acme.id + 100, {"disabled": True})) is None
    with pytest.raises(AssertionError):
        await one(store, UpdateClient(acme.id, {"id": 5}))


# --- players ----------------------------------------------------------------------------------


async def test_players(store: PostgresStore, raw: asyncpg.Connection) -> None:
    client = await new_client(store)
    player = await new_player(store, client, "p1", "Neo")
    assert player.cash.bucket is Bucket.CASH
    assert player.free.bucket is Bucket.FREE
    assert player.cash.balance == player.free.balance == Balance(0, 0, 0)
    assert player.cash.currency == player.free.currency == EUR
    assert (player.nickname, player.blocked, player.game_type) == ("Neo", False, None)
    rows = await raw.fetch(
        "SELECT owner_kind, owner_id, currency, bucket, shard, no_overdraft FROM accounts"
        " ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        ("player", player.id, EUR, "cash", 0, True),
        ("player", player.id, EUR, "free", 0, True),
    ]
    assert await one(store, InsertPlayer(client.id, "p1", "USD", "", NOW)) is None
    assert await count_of(raw, "accounts") == 2

    assert await one(store, GetPlayer(player_id=player.id)) == player
    assert await one(store, GetPlayer(client_id=client.id, external_id="p1")) == player
    assert await one(store, GetPlayer(client_id=client.id, external_id="nope")) is None
    assert await one(store, GetPlayer(player_id=player.id, lock=True)) == player

    changes = {"blocked": True, "game_type": "slots", "game_since_ms": NOW, "nickname": "Trin"}
    await one(store, UpdatePlayer(player.id, changes))
    updated = await one(store, GetPlayer(player_id=player.id))
    assert (updated.blocked, updated.game_type, updated.game_since_ms, updated.nickname) == (
        True,
        "slots",
        NOW,
        "Trin",
    )
    await one(store, UpdatePlayer(player.id, {}))
    with pytest.raises(AssertionError):
        await one(store, UpdatePlayer(player.id, {"client_id": 2}))


async def test_list_players(store: PostgresStore) -> None:
    client = await new_client(store)
    other = await new_client(store, "other")
    names = ["alice", "bob", "50%_off", "carol", "dave"]
    players = [await new_player(store, client, f"ext-{n}", n.upper()) for n in names]
    await new_player(store, other, "ext-alice")
    await store.run(move(client, players[1].id, "f1", 5, kind="credit"))
    await one(store, UpdatePlayer(players[3].id, {"game_type": "poker"}))

    async def ids(**filters: Any) -> tuple[list[str], int]:
        page, total = await one(store, ListPlayers(client.id, **filters))
        return [p.external_id for p in page], total

    every = [p.external_id for p in players]
    assert await ids() == (every, 5)
    assert await ids(limit=2) == (every[:2], 5)
    assert await ids(offset=4, limit=2) == (every[4:], 5)
    assert await ids(offset=10) == ([], 5)  # past the end: the total still counts
    assert await ids(limit=0) == ([], 5)
    assert await ids(non_zero=True) == (["ext-bob"], 1)
    assert await ids(in_game=True) == (["ext-carol"], 1)
    assert await ids(search="LIC") == (["ext-alice"], 1)  # case-insensitive, nickname too
    assert await ids(search="%") == (["ext-50%_off"], 1)  # wildcards are literal
    assert await ids(search="_") == (["ext-50%_off"], 1)
    assert await ids(search="0%_o") == (["ext-50%_off"], 1)
    assert await ids(external_ids=("ext-dave", "ext-bob", "ext-zed")) == (
        ["ext-bob", "ext-dave"],
        2,
    )
    assert await ids(external_ids=()) == ([], 0)
    assert await ids(search="a", in_game=True) == (["ext-carol"], 1)
    every_client, total = await one(store, ListPlayers(None))
    assert total == 6
    assert len(every_client) == 6
    fetched = await one(store, ListPlayers(client.id, external_ids=("ext-bob",)))
    assert fetched[0][0].cash.balance == Balance(5, 0, 0)


# --- accounts and postings ----------------------------------------------------------------------


async def test_owner_accounts_are_created_once_per_shard(
    store: PostgresStore, raw: asyncpg.Connection
) -> None:
    client = await new_client(store, shards=4)
    rows = await one(store, GetOwnerAccounts(OwnerKind.CLIENT, client.id, EUR, 4))
    assert len(rows) == 4
    assert all(r.balance == Balance() and r.bucket is Bucket.CASH for r in rows)
    again = await one(store, GetOwnerAccounts(OwnerKind.CLIENT, client.id, EUR, 4, lock=True))
    assert again == rows
    shard2 = await one(store, GetOwnerAccounts(OwnerKind.CLIENT, client.id, EUR, 4, shard=2))
    assert shard2 == [rows[2]]
    stored = await raw.fetch(
        "SELECT id, shard, no_overdraft FROM accounts WHERE owner_kind = 'client' ORDER BY shard"
    )
    assert [(r["id"], r["shard"], r["no_overdraft"]) for r in stored] == [
        (row.id, shard, False) for shard, row in enumerate(rows)
    ]
    # A single shard first, the rest later; another bucket and the house are separate rows.
    free = await one(
        store, GetOwnerAccounts(OwnerKind.CLIENT, client.id, EUR, 4, bucket="free", shard=3)
    )
    free_all = await one(
        store, GetOwnerAccounts(OwnerKind.CLIENT, client.id, EUR, 4, bucket="free")
    )
    assert free_all[3] == free[0]
    assert {r.bucket for r in free_all} == {Bucket.FREE}
    house = await one(store, GetOwnerAccounts(OwnerKind.HOUSE, 0, "USD", 1))
    assert house[0].currency == "USD"
    assert await count_of(raw, "accounts") == 4 + 4 + 1
    with pytest.raises(AssertionError):
        await one(store, GetOwnerAccounts(OwnerKind.CLIENT, client.id, EUR, 4, shard=4))


async def test_apply_posts_balanced_deltas_and_records_postings(
    store: PostgresStore, raw: asyncpg.Connection
) -> None:
    client, player, funding = await funded(store)
    assert await balance(store, player.id) == Balance(TEN, 0, 0)
    postings = await raw.fetch(
        "SELECT operation_id, account_id, currency, amount_minor, created_at_ms FROM postings"
        " ORDER BY amount_minor"
    )
    [house] = await one(
        store,
        GetOwnerAccounts(OwnerKind.CLIENT, client.id, EUR, 2, shard=shard_of(player.id, 2)),
    )
    assert house.balance.posted_minor == -TEN  # a client account may go below zero
    assert [tuple(r) for r in postings] == [
        (funding, house.id, EUR, -TEN, NOW),
        (funding, player.cash.id, EUR, TEN, NOW),
    ]

    # Holds and pending credits move no posted money: no postings, no balance check needed.
    hold = await one(
        store,
        InsertOperation(
            client.id, "wire", "h1", "withdraw", player.id, EUR, 300, 0, OpState.HELD, NOW
        ),
    )
    await one(
        store,
        Apply(hold.id, (Delta(player.cash.id, EUR, held_minor=300, pending_minor=7),), NOW),
    )
    assert await balance(store, player.id) == Balance(TEN, 300, 7)
    assert await count_of(raw, "postings") == 2

    # Deltas on the same account are added up; each posted part is its own posting.
    await run(
        store,
        Apply(
            hold.id,
            (
                Delta(player.cash.id, EUR, -200, held_minor=-300, pending_minor=-7),
                Delta(player.cash.id, EUR, -100),
                Delta(house.id, EUR, 300),
            ),
            NOW + 1,
        ),
        UpdateOperation(hold.id, OpState.CONFIRMED, NOW + 1),
    )
    assert await balance(store, player.id) == Balance(TEN - 300, 0, 0)
    assert await count_of(raw, "postings") == 5
    assert await one(store, Audit()) == []


async def test_apply_refuses_unbalanced_or_unknown_before_writing(
    store: PostgresStore, raw: asyncpg.Connection
) -> None:
    client, player, funding = await funded(store)
    [house] = await one(store, GetOwnerAccounts(OwnerKind.CLIENT, client.id, EUR, 2, shard=0))
    with pytest.raises(UnbalancedPosting):
        await run(
            store,
            SetMetaIfAbsent("k", "v"),
            Apply(funding, (Delta(player.cash.id, EUR, -5), Delta(house.id, EUR, 4)), NOW),
        )
    with pytest.raises(UnbalancedPosting):  # one posted entry is never a posting
        await one(store, Apply(funding, (Delta(player.cash.id, EUR, -5),), NOW))
    with pytest.raises(AssertionError, match="unknown account"):
        await one(store, Apply(funding, (Delta(10_000, EUR, held_minor=1),), NOW))
    with pytest.raises(AssertionError, match="currency"):
        await one(store, Apply(funding, (Delta(player.cash.id, "USD", held_minor=1),), NOW))
    assert await one(store, GetMeta("k")) is None
    assert await balance(store, player.id) == Balance(TEN, 0, 0)
    assert await count_of(raw, "postings") == 2
    await one(store, Apply(funding, (), NOW))  # nothing to do is fine


async def test_a_check_violation_is_an_assertion_and_rolls_back(
    store: PostgresStore, raw: asyncpg.Connection
) -> None:
    client, player, _ = await funded(store)

    with pytest.raises(AssertionError, match="accounts_no_overdraft"):
        # The use case forgets to check funds: the database refuses the overdraft.
        await store.run(
            move(client, player.id, "too-much", TEN + 1, kind="debit", check_funds=False)
        )
    with pytest.raises(AssertionError, match="accounts_pending_nonneg"):
        await one(store, Apply(1, (Delta(player.free.id, EUR, held_minor=-1),), NOW))
    assert await balance(store, player.id) == Balance(TEN, 0, 0)
    assert await count_of(raw, "operations") == 1  # "too-much" was rolled back with the rest
    assert await one(store, Audit()) == []


# --- operations -------------------------------------------------------------------------------


def _operation(
    client: ClientRecord,
    player: PlayerRecord,
    ext_id: str,
    *,
    now_ms: int = NOW,
    kind: str = "withdraw",
    state: OpState = OpState.HELD,
    ns: str = "wire",
    free_minor: int = 5,
) -> InsertOperation:
    return InsertOperation(
        client.id,
        ns,
        ext_id,
        kind,
        player.id,
        EUR,
        100,
        free_minor,
        state,
        now_ms,
        {"round": "r1"},
    )


async def test_operations(store: PostgresStore) -> None:
    client = await new_client(store)
    player = await new_player(store, client)
    created = await one(store, _operation(client, player, "t1"))
    assert isinstance(created, OperationRecord)
    assert created.state is OpState.HELD
    assert (created.amount_minor, created.free_minor, created.detail) == (100, 5, {"round": "r1"})
    assert created.created_at_ms == created.updated_at_ms == NOW
    assert await one(store, _operation(client, player, "t1", kind="deposit")) is None
    internal = await one(store, _operation(client, player, "t1", ns="internal"))
    assert internal is not None

    assert await one(store, GetOperation(operation_id=created.id)) == created
    assert await one(store, GetOperation(client_id=client.id, ext_id="t1")) == created
    assert await one(store, GetOperation(client_id=client.id, ns="internal", ext_id="t1")) == (
        internal
    )
    assert await one(store, GetOperation(client_id=client.id, ext_id="t2", lock=True)) is None

    await one(
        store, UpdateOperation(created.id, OpState.CONFIRMED, NOW + 5, {"by": "x", "nul": "\0"})
    )
    await one(store, UpdateOperation(created.id, OpState.CONFIRMED, NOW + 6))
    after = await one(store, GetOperation(operation_id=created.id, lock=True))
    assert after.state is OpState.CONFIRMED
    assert after.updated_at_ms == NOW + 6
    assert after.detail == {"round": "r1", "by": "x", "nul": "\0"}
    with pytest.raises(AssertionError):
        await one(store, UpdateOperation(created.id + 100, OpState.CONFIRMED, NOW))
    with pytest.raises(AssertionError):
        await one(store, UpdateOperation(created.id + 100, OpState.CONFIRMED, NOW, {"a": 1}))


async def test_list_operations(store: PostgresStore) -> None:
    client = await new_client(store)
    other = await new_client(store, "other")
    player = await new_player(store, client)
    player2 = await new_player(store, client, "p2")
    made = [
        await one(
            store,
            _operation(
                client, player, f"t{i}", now_ms=NOW + i % 3, kind="deposit" if i % 2 else "withdraw"
            ),
        )
        for i in range(6)
    ]
    stranger = await new_player(store, other)
    await one(store, _operation(other, stranger, "t0"))
    await one(store, _operation(client, player2, "x"))
    await one(store, UpdateOperation(made[0].id, OpState.CONFIRMED, NOW + 50))

    async def ids(**filters: Any) -> tuple[list[str], int]:
        page, total = await one(store, ListOperations(**filters))
        return [o.ext_id for o in page], total

    # Newest first by (created_at_ms, id): t2, t5 at +2; t1, t4 at +1; t0, t3 at +0.
    assert await ids(client_id=client.id, player_id=player.id) == (
        ["t5", "t2", "t4", "t1", "t3", "t0"],
        6,
    )
    assert await ids(player_id=player.id, oldest_first=True, limit=2) == (["t0", "t3"], 6)
    assert await ids(player_id=player.id, offset=5) == (["t0"], 6)
    assert await ids(player_id=player.id, offset=6) == ([], 6)
    assert await ids(player_id=player.id, kinds=("deposit",)) == (["t5", "t1", "t3"], 3)
    assert await ids(player_id=player.id, states=(OpState.CONFIRMED, OpState.PENDING)) == (
        ["t0"],
        1,
    )
    assert await ids(player_id=player.id, since_ms=NOW + 1, until_ms=NOW + 2) == (
        ["t4", "t1"],
        2,
    )
    assert await ids(player_id=player.id, updated_before_ms=NOW + 1) == (["t3"], 1)
    assert await ids(player_id=player.id, ns="internal") == ([], 0)
    assert await ids(client_id=other.id) == (["t0"], 1)
    assert (await ids())[1] == 8
    assert await ids(kinds=()) == ([], 0)


# --- sessions, idempotency, meta ------------------------------------------------------------------


async def test_sessions(store: PostgresStore) -> None:
    client = await new_client(store)
    player = await new_player(store, client)
    ticket = SessionRecord("tok", client.id, player.id, "ticket", NOW + 60_000, NOW)
    await one(store, InsertSession(ticket))
    assert await one(store, GetSession("tok")) == ticket
    assert await one(store, GetSession("other")) is None
    assert await one(store, MarkSessionUsed("tok", NOW + 1)) is True
    assert await one(store, MarkSessionUsed("tok", NOW + 2)) is False
    assert await one(store, MarkSessionUsed("other", NOW + 2)) is False
    used = await one(store, GetSession("tok"))
    assert used.used_at_ms == NOW + 1


async def test_idempotency(store: PostgresStore) -> None:
    assert await one(store, GetIdempotency(1, "seamless", "k")) is None
    await one(store, SaveIdempotency(1, "seamless", "k", "fp1", b"\x00first", NOW))
    await one(store, SaveIdempotency(1, "seamless", "k", "fp2", b"second", NOW + 1))
    saved = await one(store, GetIdempotency(1, "seamless", "k"))
    assert (saved.fingerprint, saved.response, saved.created_at_ms) == ("fp1", b"\x00first", NOW)
    assert await one(store, GetIdempotency(2, "seamless", "k")) is None

    for i in range(7):
        await one(store, SaveIdempotency(2, "s", f"old{i}", "f", b"", NOW - 100 + i))
    assert await one(store, PurgeIdempotency(before_ms=NOW, limit=3)) == 3
    assert await one(store, PurgeIdempotency(before_ms=NOW, limit=3)) == 3
    assert await one(store, PurgeIdempotency(before_ms=NOW, limit=3)) == 1
    assert await one(store, PurgeIdempotency(before_ms=NOW, limit=3)) == 0
    assert await one(store, GetIdempotency(1, "seamless", "k")) == saved  # not old enough


async def test_meta(store: PostgresStore) -> None:
    assert await one(store, GetMeta("install_id")) is None
    assert await one(store, SetMetaIfAbsent("install_id", "a")) == "a"
    assert await one(store, SetMetaIfAbsent("install_id", "b")) == "a"
    assert await one(store, GetMeta("install_id")) == "a"


# --- locks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("lock", [True, False])
async def test_lock_flags_lock_rows_until_the_end_of_the_transaction(
    store: PostgresStore, raw: asyncpg.Connection, pg_url: str, lock: bool
) -> None:
    client = await new_client(store, shards=2)
    player = await new_player(store, client)
    operation = await one(store, _operation(client, player, "t1"))
    [shard0, shard1] = await one(store, GetOwnerAccounts(OwnerKind.CLIENT, client.id, EUR, 2))
    gate = await gate_for(pg_url, store, client)

    def locking() -> UseCase[None]:
        yield from do(GetPlayer(client_id=client.id, external_id="p1", lock=lock))
        yield from do(GetOperation(operation_id=operation.id, lock=lock))
        yield from do(GetOwnerAccounts(OwnerKind.CLIENT, client.id, EUR, 2, shard=1, lock=lock))
        yield from gate.wait()

    task = asyncio.create_task(store.run(locking()))
    try:
        await wait_for_waiters(raw, 1)
        assert await is_locked(raw, "players", player.id) is lock
        assert await is_locked(raw, "accounts", player.cash.id) is lock
        assert await is_locked(raw, "accounts", player.free.id) is lock
        assert await is_locked(raw, "operations", operation.id) is lock
        assert await is_locked(raw, "accounts", shard1.id) is lock
        assert await is_locked(raw, "accounts", shard0.id) is False
    finally:
        await gate.open()
        await task
    assert await is_locked(raw, "players", player.id) is False


async def test_try_lock_key_across_concurrent_transactions(
    store: PostgresStore, raw: asyncpg.Connection, pg_url: str
) -> None:
    client = await new_client(store)
    gate = await gate_for(pg_url, store, client)

    def holder() -> UseCase[list[bool]]:
        first = yield from do(TryLockKey("jdb:42"))
        again = yield from do(TryLockKey("jdb:42"))  # the holder itself may take it again
        yield from gate.wait()
        return [first, again]

    task = asyncio.create_task(store.run(holder()))
    try:
        await wait_for_waiters(raw, 1)
        assert await one(store, TryLockKey("jdb:42")) is False
        assert await one(store, TryLockKey("jdb:43")) is True
    finally:
        await gate.open()
        assert await task == [True, True]
    # Released at the end of the holder's transaction.
    assert await one(store, TryLockKey("jdb:42")) is True


# --- outbox -----------------------------------------------------------------------------------


def _enqueue(topic: str = "callback", due_at_ms: int = NOW, payload: Any = None) -> Enqueue:
    return Enqueue(topic, None, None, payload or {"n": 1}, due_at_ms, NOW - 10)


async def test_outbox_claim_lease_and_finish(store: PostgresStore) -> None:
    first = await one(store, _enqueue(payload={"b": [1, {"c": None}], "a": "é"}))
    second = await one(store, _enqueue("settle"))
    await one(store, _enqueue(due_at_ms=NOW + 1_000))  # not due yet
    assert first < second

    claimed = await one(store, ClaimOutbox("w1", limit=10, lease_ms=500, now_ms=NOW))
    assert [m.id for m in claimed] == [first, second]
    message = claimed[0]
    assert message.payload == {"b": [1, {"c": None}], "a": "é"}
    assert (message.lease_owner, message.lease_until_ms, message.attempts) == ("w1", NOW + 500, 1)
    assert message.first_attempt_at_ms == NOW
    assert message.created_at_ms == NOW - 10
    # Leased: nobody else gets them until the lease runs out.
    assert await one(store, ClaimOutbox("w2", 10, 500, NOW + 499)) == []
    reclaimed = await one(store, ClaimOutbox("w2", 1, 500, NOW + 500))
    assert [(m.id, m.lease_owner, m.attempts, m.first_attempt_at_ms) for m in reclaimed] == [
        (first, "w2", 2, NOW)
    ]

    # Only the current owner may record the attempt.
    assert await one(store, FinishOutbox(first, "w1", "done", NOW + 600)) is False
    assert await one(store, FinishOutbox(first, "w2", "done", NOW + 600)) is True
    assert await one(store, FinishOutbox(first, "w2", "done", NOW + 601)) is False
    retry = FinishOutbox(second, "w1", "pending", NOW + 600, due_at_ms=NOW + 5_000, error="503")
    assert await one(store, retry) is True

    page, total = await one(store, ListOutbox())
    assert total == 3
    [third, second_row, first_row] = page
    assert third.id > second
    assert (first_row.state, first_row.done_at_ms, first_row.lease_owner) == (
        "done",
        NOW + 600,
        None,
    )
    assert (second_row.state, second_row.due_at_ms, second_row.last_error) == (
        "pending",
        NOW + 5_000,
        "503",
    )
    assert (second_row.lease_owner, second_row.lease_until_ms) == (None, None)

    # The third becomes due at +1000; the second at +5000 (its retry time).
    due = await one(store, ClaimOutbox("w3", 10, 100, NOW + 1_000))
    assert [m.id for m in due] == [third.id]
    assert await one(store, FinishOutbox(third.id, "w3", "dead", NOW + 1_001, error="gone"))
    dead = await one(store, ListOutbox(state="dead"))
    assert [(m.id, m.done_at_ms, m.last_error) for m in dead[0]] == [
        (third.id, NOW + 1_001, "gone")
    ]
    assert dead[1] == 1
    assert await one(store, ListOutbox(state="pending", offset=5)) == ([], 1)
    assert (await one(store, ListOutbox(limit=1, offset=1)))[0][0].id == second

    # Back-office "retry now": dead and pending messages, never done ones.
    assert await one(store, RetryOutbox(third.id, NOW + 2_000)) is True
    assert await one(store, RetryOutbox(second, NOW + 2_000)) is True
    assert await one(store, RetryOutbox(first, NOW + 2_000)) is False
    assert await one(store, RetryOutbox(99_999, NOW + 2_000)) is False
    retried = await one(store, ClaimOutbox("w4", 10, 100, NOW + 2_000, topics=("settle",)))
    assert [(m.id, m.attempts, m.done_at_ms) for m in retried] == [(second, 2, None)]
    again = await one(store, ClaimOutbox("w4", 10, 100, NOW + 2_000, topics=("callback",)))
    assert [(m.id, m.attempts) for m in again] == [(third.id, 2)]
    with pytest.raises(AssertionError):
        await one(store, FinishOutbox(third.id, "w4", "pending", NOW))  # a retry needs a time


async def test_two_claimers_never_get_the_same_message(
    store: PostgresStore, raw: asyncpg.Connection, pg_url: str
) -> None:
    client = await new_client(store)
    gate = await gate_for(pg_url, store, client)
    ids = [await one(store, _enqueue()) for _ in range(8)]

    def slow_claimer() -> UseCase[list[int]]:
        claimed = yield from do(ClaimOutbox("slow", limit=3, lease_ms=60_000, now_ms=NOW))
        yield from gate.wait()  # its rows stay locked, their lease not yet committed
        return [m.id for m in claimed]

    task = asyncio.create_task(store.run(slow_claimer()))
    try:
        await wait_for_waiters(raw, 1)
        # SKIP LOCKED: the second claimer neither waits for nor takes the slow one's rows.
        fast = await asyncio.wait_for(
            one(store, ClaimOutbox("fast", limit=10, lease_ms=60_000, now_ms=NOW)), WAIT_S
        )
    finally:
        await gate.open()
    slow = await task
    assert slow == ids[:3]
    assert [m.id for m in fast] == ids[3:]

    # Many claimers at once: every message exactly once.
    more = [await one(store, _enqueue()) for _ in range(40)]
    batches = await asyncio.gather(
        *(one(store, ClaimOutbox(f"w{i}", 3, 60_000, NOW)) for i in range(20))
    )
    got = [m.id for batch in batches for m in batch]
    assert sorted(got) == more


# --- the audit --------------------------------------------------------------------------------


def assert_reported(lines: list[str], *fragments: str) -> None:
    assert any(all(f in line for f in fragments) for line in lines), (fragments, lines)


async def test_audit_is_clean_on_a_consistent_ledger(store: PostgresStore) -> None:
    assert await one(store, Audit()) == []
    client, player, _ = await funded(store)
    hold = await one(store, _operation(client, player, "h1", free_minor=0))  # holds 100 cash
    await one(store, Apply(hold.id, (Delta(player.cash.id, EUR, held_minor=100),), NOW))
    await store.run(move(client, player.id, "d1", 30, kind="debit"))
    assert await balance(store, player.id) == Balance(TEN - 30, 100, 0)
    assert await one(store, Audit()) == []


async def test_audit_reports_each_broken_invariant(
    store: PostgresStore, raw: asyncpg.Connection
) -> None:
    client, player, funding = await funded(store)
    [house] = await one(
        store,
        GetOwnerAccounts(OwnerKind.CLIENT, client.id, EUR, 2, shard=shard_of(player.id, 2)),
    )
    assert await one(store, Audit()) == []

    # The audit runs in the store's own transaction, so it sees only committed corruption:
    # corrupt for real, audit, repair. Statements are (sql, *parameters).
    async def audit_after(*statements: tuple[Any, ...]) -> list[str]:
        for sql, *args in statements:
            await raw.execute(sql, *args)
        lines: list[str] = await one(store, Audit())
        return lines

    set_posted = "UPDATE accounts SET posted_minor = posted_minor + $2 WHERE id = $1"
    set_held = "UPDATE accounts SET held_minor = $2 WHERE id = $1"
    set_state = "UPDATE operations SET state = $2 WHERE id = $1"

    # 1. posted balances of a currency don't sum to zero (an account with no postings).
    lines = await audit_after(
        (
            (
                "INSERT INTO accounts (owner_kind, owner_id, currency, bucket, shard,"
                " posted_minor, no_overdraft) VALUES ('house', 0, 'XAG', 'cash', 0, 123, false)"
            ),
        )
    )
    assert_reported(lines, "currency XAG", "123")
    await raw.execute("DELETE FROM accounts WHERE currency = 'XAG'")
    assert await one(store, Audit()) == []

    # 2. a no-overdraft account below zero (its CHECK constraint dropped to get there).
    lines = await audit_after(
        ("ALTER TABLE accounts DROP CONSTRAINT accounts_no_overdraft",),
        (set_posted, player.free.id, -1),
        (set_posted, house.id, 1),
    )
    assert_reported(lines, f"account {player.free.id}", "overdraft")
    await audit_after((set_posted, player.free.id, 1), (set_posted, house.id, -1))
    assert await one(store, Audit()) == []

    # 3. an operation's postings don't balance.
    lines = await audit_after(
        (
            (
                "INSERT INTO postings (operation_id, account_id, currency, amount_minor,"
                " created_at_ms) VALUES ($1, $2, 'EUR', 7, $3)"
            ),
            funding,
            player.cash.id,
            NOW,
        )
    )
    assert_reported(lines, f"operation {funding}", "EUR", "7")
    await raw.execute("DELETE FROM postings WHERE amount_minor = 7")
    assert await one(store, Audit()) == []

    # 4. an account's posted balance is not the sum of its postings (the totals still agree).
    lines = await audit_after((set_posted, player.cash.id, 5), (set_posted, house.id, -5))
    assert len(lines) == 2, lines
    assert_reported(lines, f"account {player.cash.id}", str(TEN + 5), str(TEN))
    assert_reported(lines, f"account {house.id}", str(-TEN - 5), str(-TEN))
    await audit_after((set_posted, player.cash.id, -5), (set_posted, house.id, 5))
    assert await one(store, Audit()) == []

    # 5. a hold with no operation behind it.
    lines = await audit_after((set_held, player.cash.id, 5))
    assert len(lines) == 1, lines
    assert_reported(lines, f"player account {player.cash.id}", "5")
    await raw.execute(set_held, player.cash.id, 0)
    assert await one(store, Audit()) == []

    # 6a. a rolled-back operation with postings.
    lines = await audit_after((set_state, funding, "rolled_back"))
    assert len(lines) == 1, lines
    assert_reported(lines, f"operation {funding}", "rolled_back")
    await raw.execute(set_state, funding, "completed")
    assert await one(store, Audit()) == []
    # 6b. a confirmed operation with an amount but no postings.
    lines = await audit_after(
        (
            (
                "INSERT INTO operations (client_id, ns, ext_id, kind, player_id, currency,"
                " amount_minor, free_minor, state, created_at_ms, updated_at_ms) VALUES"
                " ($1, 'wire', 'ghost', 'withdraw', $2, 'EUR', 10, 0, 'confirmed', $3, $3)"
            ),
            client.id,
            player.id,
            NOW,
        )
    )
    ghost = await raw.fetchval("SELECT id FROM operations WHERE ext_id = 'ghost'")
    assert len(lines) == 1, lines
    assert_reported(lines, f"operation {ghost}", "confirmed")
    await raw.execute("DELETE FROM operations WHERE id = $1", ghost)
    assert await one(store, Audit()) == []

    # 7. an operation of a client that does not exist (no foreign key since migration 0006).
    lines = await audit_after(
        (
            (
                "INSERT INTO operations (client_id, ns, ext_id, kind, player_id, currency,"
                " amount_minor, free_minor, state, created_at_ms, updated_at_ms) VALUES"
                " ($1, 'wire', 'orphan', 'withdraw', $2, 'EUR', 0, 0, 'rolled_back', $3, $3)"
            ),
            client.id + 1000,
            player.id,
            NOW,
        )
    )
    orphan = await raw.fetchval("SELECT id FROM operations WHERE ext_id = 'orphan'")
    assert lines == [
        f"operation {orphan} belongs to client {client.id + 1000}, which does not exist"
    ], lines


async def test_no_row_lock_on_the_client_for_each_operation(raw: asyncpg.Connection) -> None:
    """Migration 0006: operations carry no foreign key to clients (it locked the client's
    row in every wallet call); the player key stays."""
    keys = await raw.fetch(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'operations'::regclass"
        " AND contype = 'f' ORDER BY conname"
    )
    assert [k["conname"] for k in keys] == ["operations_player_id_fkey"]


# --- the concurrency requirement ---------------------------------------------------------------


@pytest.mark.slow
async def test_fifty_concurrent_debits_of_a_ten_unit_balance(pg_url: str) -> None:
    """50 connections each debit 1.0000 from a player holding 10.0000: exactly 10 succeed."""
    await asyncio.to_thread(upgrade, pg_url)
    store = PostgresStore(pg_url, min_size=50, max_size=50)
    await store.start()
    watcher = await asyncpg.connect(pg_url)
    try:
        client, player, _ = await funded(store)
        lowest = [TEN]
        stop = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                posted = await watcher.fetchval(
                    "SELECT posted_minor - held_minor FROM accounts WHERE id = $1", player.cash.id
                )
                lowest[0] = min(lowest[0], posted)
                await asyncio.sleep(0)

        watching = asyncio.create_task(watch())
        outcomes = await asyncio.gather(
            *(
                store.run(move(client, player.id, f"debit-{i}", 10_000, kind="debit"))
                for i in range(50)
            ),
            return_exceptions=True,
        )
        stop.set()
        await watching

        succeeded = [o for o in outcomes if isinstance(o, int)]
        refused = [o for o in outcomes if isinstance(o, WalletError)]
        assert len(succeeded) == 10, outcomes
        assert len(refused) == 40, outcomes
        assert {e.code for e in refused} == {ErrorCode.INSUFFICIENT_FUNDS}
        assert await balance(store, player.id) == Balance(0, 0, 0)
        assert lowest[0] >= 0
        assert (
            await watcher.fetchval(
                "SELECT min(posted_minor - held_minor) FROM accounts WHERE owner_kind = 'player'"
            )
            == 0
        )
        assert await watcher.fetchval("SELECT count(*) FROM operations") == 11
        assert await one(store, Audit()) == []
    finally:
        await watcher.close()
        await store.close()


async def test_migration_0006_goes_down_and_up_again(pg_url: str) -> None:
    """Downgrading 0006 restores the client foreign key; upgrading drops it again."""
    from alembic import command

    from gamewallet.store.migrate import alembic_config

    async def client_keys() -> list[str]:
        conn = await asyncpg.connect(pg_url)
        try:
            rows = await conn.fetch(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'operations'::regclass"
                " AND contype = 'f' AND conname = 'operations_client_id_fkey'"
            )
        finally:
            await conn.close()
        return [r["conname"] for r in rows]

    await asyncio.to_thread(upgrade, pg_url)
    assert await client_keys() == []
    await asyncio.to_thread(command.downgrade, alembic_config(pg_url), "0005")
    assert await client_keys() == ["operations_client_id_fkey"]
    await asyncio.to_thread(upgrade, pg_url)
    assert await client_keys() == []

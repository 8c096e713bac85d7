"""Contract: clients and players (unique keys, JSON config, updates, listing and filters)."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from gamewallet.core.ledger import Balance, Bucket, OwnerKind
from gamewallet.store import ops
from gamewallet.store.port import Store, UseCase, do
from gamewallet.store.records import ClientRecord, PlayerRecord

R = TypeVar("R")
NOW_MS = 1_767_225_600_000


async def one(store: Store, op: ops.Op[R]) -> R:
    """Run a single request in its own transaction."""
    return await store.run(do(op))


def new_client(name: str, protocol: str = "hrg", **overrides: Any) -> ops.InsertClient:
    fields: dict[str, Any] = {
        "protocol": protocol,
        "name": name,
        "username": None,
        "secret_hash": None,
        "currency": "CNY",
        "credit_limit_minor": 1_000_000,
        "shards": 1,
        "config": {},
        "now_ms": NOW_MS,
    }
    fields.update(overrides)
    return ops.InsertClient(**fields)


# --- clients -----------------------------------------------------------------------------


async def test_insert_client_returns_every_field(store: Store) -> None:
    config = {"callback_url": "https://x.example/cb", "retries": [1, 2, 3], "nested": {"a": None}}
    record = await one(
        store,
        ops.InsertClient(
            protocol="seamless",
            name="acme",
            username="user",
            secret_hash="h",
            currency=None,
            credit_limit_minor=None,
            shards=16,
            config=config,
            now_ms=NOW_MS,
        ),
    )
    assert record == ClientRecord(
        id=record.id if record else 0,
        protocol="seamless",
        name="acme",
        username="user",
        secret_hash="h",
        currency=None,
        credit_limit_minor=None,
        shards=16,
        config=config,
        created_at_ms=NOW_MS,
        disabled=False,
    )
    assert record is not None
    assert await one(store, ops.GetClient(client_id=record.id)) == record
    assert await one(store, ops.GetClient(protocol="seamless", name="acme")) == record


async def test_client_ids_are_distinct_and_increasing(store: Store) -> None:
    first = await one(store, new_client("a"))
    second = await one(store, new_client("b"))
    assert first is not None
    assert second is not None
    assert 0 < first.id < second.id


async def test_duplicate_client_is_refused_with_none(store: Store) -> None:
    first = await one(store, new_client("agent-1"))
    assert first is not None
    assert await one(store, new_client("agent-1", currency="USD")) is None
    assert await one(store, ops.GetClient(client_id=first.id)) == first
    # The same name under another protocol is another client.
    other = await one(store, new_client("agent-1", protocol="jdb"))
    assert other is not None
    assert other.id != first.id


async def test_unknown_client_is_none(store: Store) -> None:
    assert await one(store, ops.GetClient(client_id=999)) is None
    assert await one(store, ops.GetClient(protocol="hrg", name="nobody")) is None
    assert await one(store, ops.UpdateClient(999, {"disabled": True})) is None


async def test_client_config_json_round_trips_unicode(store: Store) -> None:
    config = {
        "名字": "泥码 test ✓",
        "emoji": "🎰",
        "quote": 'a "quoted" \\ back\\slash',
        "list": [1, "two", 3.5, True, None],
        "deep": {"x": {"y": ["z"]}},
    }
    created = await one(store, new_client("unicode", config=config))
    assert created is not None
    assert created.config == config
    fetched = await one(store, ops.GetClient(client_id=created.id))
    assert fetched is not None
    assert fetched.config == config


async def test_update_client_changes_only_the_given_fields(store: Store) -> None:
    created = await one(store, new_client("agent"))
    assert created is not None
    updated = await one(
        store,
        ops.UpdateClient(
            created.id,
            {
                "secret_hash": "new-hash",
                "credit_limit_minor": 5,
                "config": {"k": "v ✓"},
                "disabled": True,
                "username": "u2",
                "currency": "USD",
            },
        ),
    )
    assert updated is not None
    assert (updated.secret_hash, updated.credit_limit_minor, updated.config) == (
        "new-hash",
        5,
        {"k": "v ✓"},
    )
    assert (updated.disabled, updated.username, updated.currency) == (True, "u2", "USD")
    assert (updated.name, updated.protocol, updated.shards) == ("agent", "hrg", 1)
    assert await one(store, ops.GetClient(client_id=created.id)) == updated
    cleared = await one(store, ops.UpdateClient(created.id, {"credit_limit_minor": None}))
    assert cleared is not None
    assert cleared.credit_limit_minor is None
    assert cleared.disabled is True


async def test_list_clients_by_id_and_protocol(store: Store) -> None:
    a = await one(store, new_client("a", protocol="jdb"))
    b = await one(store, new_client("b", protocol="hrg"))
    c = await one(store, new_client("c", protocol="jdb"))
    assert await one(store, ops.ListClients()) == [a, b, c]
    assert await one(store, ops.ListClients(protocol="jdb")) == [a, c]
    assert await one(store, ops.ListClients(protocol="seamless")) == []


@pytest.mark.parametrize("overrides", [{"shards": 0}, {"shards": 257}, {"credit_limit_minor": -1}])
async def test_client_check_constraints_are_assertions(
    store: Store, overrides: dict[str, Any]
) -> None:
    with pytest.raises(AssertionError):
        await one(store, new_client("bad", **overrides))
    assert await one(store, ops.ListClients()) == []


# --- players -----------------------------------------------------------------------------


async def test_insert_player_creates_both_empty_accounts(
    store: Store, client: ClientRecord
) -> None:
    player = await one(store, ops.InsertPlayer(client.id, "ext-1", "EUR", "Zoë ✓", NOW_MS))
    assert player is not None
    assert (player.client_id, player.external_id, player.currency) == (client.id, "ext-1", "EUR")
    assert (player.nickname, player.created_at_ms) == ("Zoë ✓", NOW_MS)
    assert (player.blocked, player.locked, player.closed) == (False, False, False)
    assert player.game_type is None
    assert player.game_since_ms is None
    assert player.game_left_at_ms is None
    assert player.game_left_type is None
    assert player.cash.bucket is Bucket.CASH
    assert player.free.bucket is Bucket.FREE
    assert player.cash.id != player.free.id
    for account in (player.cash, player.free):
        assert account.currency == "EUR"
        assert account.balance == Balance(0, 0, 0)
    assert await one(store, ops.GetPlayer(player_id=player.id)) == player
    assert await one(store, ops.GetPlayer(client_id=client.id, external_id="ext-1")) == player
    assert await one(store, ops.GetPlayer(player_id=player.id, lock=True)) == player


async def test_player_accounts_are_distinct_from_owner_accounts(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    shards = await one(
        store, ops.GetOwnerAccounts(OwnerKind.CLIENT, client.id, "EUR", client.shards)
    )
    assert {player.cash.id, player.free.id}.isdisjoint(a.id for a in shards)


async def test_duplicate_player_is_refused_with_none(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    assert await one(store, ops.InsertPlayer(client.id, "p-1", "USD", "Other", NOW_MS)) is None
    assert await one(store, ops.GetPlayer(player_id=player.id)) == player
    # The same external id under another client is another player.
    other_client = await one(store, new_client("other"))
    assert other_client is not None
    other = await one(store, ops.InsertPlayer(other_client.id, "p-1", "CNY", "", NOW_MS))
    assert other is not None
    assert other.id != player.id
    assert other.cash.id not in (player.cash.id, player.free.id)


async def test_unknown_player_is_none(store: Store, client: ClientRecord) -> None:
    assert await one(store, ops.GetPlayer(player_id=12345)) is None
    assert await one(store, ops.GetPlayer(client_id=client.id, external_id="nope")) is None


async def test_update_player_fields_round_trip(store: Store, player: PlayerRecord) -> None:
    changes = {
        "nickname": "Bob 🎲",
        "blocked": True,
        "locked": True,
        "closed": True,
        "game_type": "slots",
        "game_since_ms": NOW_MS + 1,
        "game_left_at_ms": NOW_MS + 2,
        "game_left_type": "normal",
    }
    await one(store, ops.UpdatePlayer(player.id, changes))
    updated = await one(store, ops.GetPlayer(player_id=player.id))
    assert updated is not None
    assert {name: getattr(updated, name) for name in changes} == changes
    await one(store, ops.UpdatePlayer(player.id, {"game_type": None, "game_since_ms": None}))
    reset = await one(store, ops.GetPlayer(player_id=player.id))
    assert reset is not None
    assert reset.game_type is None
    assert reset.game_since_ms is None
    assert reset.blocked is True
    assert reset.cash == player.cash


def _add_players(client_id: int, names: list[tuple[str, str]]) -> UseCase[list[PlayerRecord]]:
    created: list[PlayerRecord] = []
    for external_id, nickname in names:
        record = yield from do(ops.InsertPlayer(client_id, external_id, "EUR", nickname, NOW_MS))
        assert record is not None
        created.append(record)
    return created


async def test_list_players_pages_by_id_with_total(store: Store, client: ClientRecord) -> None:
    players = await store.run(_add_players(client.id, [(f"u{i}", "") for i in range(7)]))
    page, total = await one(store, ops.ListPlayers(client.id, offset=0, limit=3))
    assert total == 7
    assert page == players[:3]
    page, total = await one(store, ops.ListPlayers(client.id, offset=3, limit=3))
    assert (page, total) == (players[3:6], 7)
    page, total = await one(store, ops.ListPlayers(client.id, offset=6, limit=3))
    assert (page, total) == (players[6:], 7)
    page, total = await one(store, ops.ListPlayers(client.id, offset=10, limit=3))
    assert (page, total) == ([], 7)


async def test_list_players_of_one_client_or_all(store: Store, client: ClientRecord) -> None:
    other = await one(store, new_client("other"))
    assert other is not None
    mine = await store.run(_add_players(client.id, [("a", ""), ("b", "")]))
    theirs = await store.run(_add_players(other.id, [("a", "")]))
    assert await one(store, ops.ListPlayers(client.id)) == (mine, 2)
    assert await one(store, ops.ListPlayers(other.id)) == (theirs, 1)
    assert await one(store, ops.ListPlayers(None)) == ([*mine, *theirs], 3)


async def test_list_players_filters(store: Store, client: ClientRecord) -> None:
    _, _, carol, _ = await store.run(
        _add_players(
            client.id,
            [("alice-01", "Queen"), ("bob-02", "the BUILDER"), ("carol", "x"), ("dave", "")],
        )
    )
    await one(store, ops.UpdatePlayer(carol.id, {"game_type": "slots", "game_since_ms": 1}))

    async def ids(**filters: Any) -> tuple[list[str], int]:
        page, total = await one(store, ops.ListPlayers(client.id, **filters))
        return [p.external_id for p in page], total

    assert await ids(external_ids=("bob-02", "dave", "missing")) == (["bob-02", "dave"], 2)
    assert await ids(external_ids=()) == ([], 0)
    assert await ids(in_game=True) == (["carol"], 1)
    assert await ids(search="BOB") == (["bob-02"], 1)  # external id, any case
    assert await ids(search="builder") == (["bob-02"], 1)  # nickname, any case
    assert await ids(search="0") == (["alice-01", "bob-02"], 2)
    assert await ids(search="zzz") == ([], 0)
    assert await ids(search="-0", limit=1) == (["alice-01"], 2)
    assert await ids(non_zero=True) == ([], 0)


async def test_list_players_search_takes_wildcards_literally(
    store: Store, client: ClientRecord
) -> None:
    await store.run(_add_players(client.id, [("a%b", ""), ("a_b", ""), ("axb", "")]))
    page, total = await one(store, ops.ListPlayers(client.id, search="%"))
    assert ([p.external_id for p in page], total) == (["a%b"], 1)
    page, total = await one(store, ops.ListPlayers(client.id, search="_"))
    assert ([p.external_id for p in page], total) == (["a_b"], 1)

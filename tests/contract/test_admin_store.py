"""Contract: the back-office requests (staff users, tokens, web sessions, the trail of staff
actions, and the dashboard's aggregates) answer alike on every store."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

import pytest

from gamewallet.core.ledger import OwnerKind
from gamewallet.core.states import OpState
from gamewallet.store import admin_ops as a
from gamewallet.store import ops
from gamewallet.store.port import Store, UseCase, do
from gamewallet.store.records import ClientRecord, PlayerRecord

R = TypeVar("R")
T0 = 1_767_225_600_000
MINUTE = 60_000


async def one(store: Store, op: ops.Op[R]) -> R:
    """Run a single request in its own transaction."""
    return await store.run(do(op))


async def add_user(store: Store, name: str = "ann", role: str = "operator") -> a.AdminUserRecord:
    user = await one(store, a.InsertAdminUser(name, role, "$argon2id$fake", T0))
    assert user is not None
    return user


# --- staff users -----------------------------------------------------------------------------


async def test_users_are_unique_by_name_and_found_by_id_or_name(store: Store) -> None:
    ann = await add_user(store)
    assert ann == a.AdminUserRecord(ann.id, "ann", "operator", "$argon2id$fake", T0)
    assert await one(store, a.InsertAdminUser("ann", "viewer", "other", T0)) is None
    bob = await add_user(store, "bob", "viewer")
    assert bob.id > ann.id
    assert await one(store, a.GetAdminUser(user_id=bob.id)) == bob
    assert await one(store, a.GetAdminUser(name="ann")) == ann
    assert await one(store, a.GetAdminUser(name="nobody")) is None
    assert await one(store, a.ListAdminUsers()) == [ann, bob]


async def test_update_user_changes_only_whitelisted_fields(store: Store) -> None:
    ann = await add_user(store)
    changed = await one(
        store,
        a.UpdateAdminUser(
            ann.id,
            {"failed_logins": 3, "locked_until_ms": T0 + 5, "disabled": True, "role": "viewer"},
        ),
    )
    assert changed == a.AdminUserRecord(
        ann.id, "ann", "viewer", ann.password_hash, T0, True, 3, T0 + 5, None
    )
    assert await one(store, a.GetAdminUser(user_id=ann.id)) == changed
    assert await one(store, a.UpdateAdminUser(ann.id + 99, {"failed_logins": 1})) is None
    with pytest.raises(AssertionError):
        await one(store, a.UpdateAdminUser(ann.id, {"name": "eve"}))
    with pytest.raises(AssertionError):
        await one(store, a.UpdateAdminUser(ann.id, {"role": "root"}))


async def test_a_failed_use_case_leaves_no_user_behind(store: Store) -> None:
    def create_then_fail() -> UseCase[None]:
        yield from do(a.InsertAdminUser("ghost", "viewer", "h", T0))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.run(create_then_fail())
    assert await one(store, a.GetAdminUser(name="ghost")) is None


# --- API tokens ------------------------------------------------------------------------------


async def test_tokens_are_found_by_hash_and_unique_by_name_and_hash(store: Store) -> None:
    token = await one(store, a.InsertAdminToken("ci", "viewer", "h1", "ann", T0))
    assert token is not None
    assert token == a.AdminTokenRecord(token.id, "ci", "viewer", "h1", T0, "ann")
    assert await one(store, a.InsertAdminToken("ci", "viewer", "h2", "ann", T0)) is None
    assert await one(store, a.InsertAdminToken("other", "viewer", "h1", "ann", T0)) is None
    assert await one(store, a.GetAdminToken(token_hash="h1")) == token
    assert await one(store, a.GetAdminToken(name="ci")) == token
    assert await one(store, a.GetAdminToken(token_hash="nope")) is None
    await one(store, a.UpdateAdminToken(token.id, {"last_used_at_ms": T0 + 1}))
    await one(store, a.UpdateAdminToken(token.id, {"revoked_at_ms": T0 + 2}))
    (listed,) = await one(store, a.ListAdminTokens())
    assert (listed.last_used_at_ms, listed.revoked_at_ms) == (T0 + 1, T0 + 2)
    with pytest.raises(AssertionError):
        await one(store, a.UpdateAdminToken(token.id, {"token_hash": "x"}))


# --- web sessions ----------------------------------------------------------------------------


async def test_sessions_round_trip_and_are_deleted_by_each_criterion(store: Store) -> None:
    ann = await add_user(store)
    bob = await add_user(store, "bob", "viewer")
    rows = [
        a.AdminSessionRecord("s1", ann.id, "c1", T0, T0 + 10),
        a.AdminSessionRecord("s2", ann.id, "c2", T0, T0 + 20),
        a.AdminSessionRecord("s3", bob.id, "c3", T0, T0 + 30),
        a.AdminSessionRecord("s4", bob.id, "c4", T0, T0 + 40),
    ]
    for row in rows:
        await one(store, a.InsertAdminSession(row))
    assert await one(store, a.GetAdminSession("s2")) == rows[1]
    assert await one(store, a.GetAdminSession("zz")) is None
    assert await one(store, a.DeleteAdminSessions(session_hash="s2")) == 1
    assert await one(store, a.DeleteAdminSessions(session_hash="s2")) == 0
    # Expired before T0+35: s1 and s3 (s2 is gone), but at most one per call.
    assert await one(store, a.DeleteAdminSessions(expired_before_ms=T0 + 35, limit=1)) == 1
    assert await one(store, a.GetAdminSession("s1")) is None
    assert await one(store, a.GetAdminSession("s3")) == rows[2]
    assert await one(store, a.DeleteAdminSessions(user_id=bob.id)) == 2
    assert await one(store, a.GetAdminSession("s4")) is None
    with pytest.raises(AssertionError):
        await one(store, a.DeleteAdminSessions())


# --- the trail of staff actions --------------------------------------------------------------


async def test_events_are_listed_newest_first_with_filters_and_totals(store: Store) -> None:
    ids = []
    for i, (actor, action) in enumerate(
        [("ann", "login"), ("bob", "adjust"), ("ann", "adjust"), ("ann", "block")]
    ):
        detail: dict[str, Any] = {"n": i, "reason": "café ✓"}
        ids.append(await one(store, a.InsertAdminEvent(actor, action, f"player:{i}", detail, T0)))
    assert ids == sorted(ids)
    page, total = await one(store, a.ListAdminEvents(limit=2))
    assert total == 4
    assert [e.id for e in page] == [ids[3], ids[2]]
    assert page[0] == a.AdminEventRecord(
        ids[3], T0, "ann", "block", "player:3", {"n": 3, "reason": "café ✓"}
    )
    page, total = await one(store, a.ListAdminEvents(actor="ann", action="adjust"))
    assert (total, [e.id for e in page]) == (1, [ids[2]])
    page, total = await one(store, a.ListAdminEvents(action="adjust", offset=1, limit=5))
    assert (total, [e.id for e in page]) == (2, [ids[1]])


# --- aggregates ------------------------------------------------------------------------------


def _open(
    client: ClientRecord,
    player: PlayerRecord,
    ext_id: str,
    kind: str,
    state: OpState,
    amount: int,
    now_ms: int,
    *,
    ns: str = "wire",
    post: int = 0,
) -> Generator[ops.Op[Any], Any, int]:
    """An operation, and if ``post`` != 0 a posting of ``post`` on the player's cash."""
    operation = yield from do(
        ops.InsertOperation(client.id, ns, ext_id, kind, player.id, "EUR", amount, 0, state, now_ms)
    )
    assert operation is not None
    if post:
        (shard,) = yield from do(
            ops.GetOwnerAccounts(OwnerKind.CLIENT, client.id, "EUR", client.shards, shard=0)
        )
        yield from do(
            ops.Apply(
                operation.id,
                (
                    ops.Delta(player.cash.id, "EUR", posted_minor=post),
                    ops.Delta(shard.id, "EUR", posted_minor=-post),
                ),
                now_ms,
            )
        )
    return operation.id


async def test_balance_totals_group_players_clients_and_house(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    other = await one(store, ops.InsertPlayer(client.id, "p-2", "EUR", "Bob", T0))
    assert other is not None
    await store.run(_open(client, player, "f1", "fund", OpState.COMPLETED, 500, T0, post=500))
    await store.run(_open(client, other, "f2", "fund", OpState.COMPLETED, 70, T0, post=70))
    totals = await one(store, a.BalanceTotals())
    by_key = {(t.owner_kind, t.client_id, t.bucket): t for t in totals}
    players_cash = by_key[("player", client.id, "cash")]
    assert (players_cash.posted_minor, players_cash.accounts, players_cash.currency) == (
        570,
        2,
        "EUR",
    )
    assert by_key[("player", client.id, "free")].posted_minor == 0
    assert by_key[("client", client.id, "cash")].posted_minor == -570
    assert sum(t.posted_minor for t in totals) == 0


async def test_count_operations_and_player_flows_by_bucket(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    # Minute 0: a 30 stake (player debited) and a 12 win; minute 2: a 5 stake; an admin
    # funding and an operation before the window are not counted.
    await store.run(
        _open(client, player, "fund", "fund", OpState.COMPLETED, 100, T0, ns="admin", post=100)
    )
    await store.run(
        _open(client, player, "w1", "withdraw", OpState.CONFIRMED, 30, T0 + 1, post=-30)
    )
    await store.run(
        _open(client, player, "d1", "deposit", OpState.CONFIRMED, 12, T0 + 59_999, post=12)
    )
    await store.run(
        _open(client, player, "w2", "withdraw", OpState.CONFIRMED, 5, T0 + 2 * MINUTE, post=-5)
    )
    await store.run(_open(client, player, "h1", "withdraw", OpState.HELD, 7, T0 + 2 * MINUTE))
    await store.run(_open(client, player, "old", "withdraw", OpState.HELD, 1, T0 - 1))
    counts = await one(store, a.CountOperations((client.id,), T0, T0 + 10 * MINUTE, MINUTE))
    assert counts == [
        a.OperationCount(T0, client.id, 2),
        a.OperationCount(T0 + 2 * MINUTE, client.id, 2),
    ]
    flows = await one(store, a.PlayerFlows((client.id,), T0, T0 + 10 * MINUTE, MINUTE))
    assert flows == [
        a.PlayerFlow(T0, client.id, "EUR", 30, 12),
        a.PlayerFlow(T0 + 2 * MINUTE, client.id, "EUR", 5, 0),
    ]
    assert await one(store, a.CountOperations((), T0, T0 + MINUTE, MINUTE)) == []
    assert await one(store, a.CountOperations((client.id + 1,), T0, T0 + MINUTE, MINUTE)) == []
    admin_counts = await one(
        store, a.CountOperations((client.id,), T0, T0 + MINUTE, MINUTE, ns="admin")
    )
    assert admin_counts == [a.OperationCount(T0, client.id, 1)]


async def test_open_totals_and_tombstones(
    store: Store, client: ClientRecord, player: PlayerRecord
) -> None:
    await store.run(_open(client, player, "h1", "withdraw", OpState.HELD, 7, T0 + 5))
    await store.run(_open(client, player, "h2", "withdraw", OpState.HELD, 3, T0 + 1))
    await store.run(_open(client, player, "p1", "deposit", OpState.PENDING, 11, T0 + 2))
    await store.run(_open(client, player, "t1", "withdraw", OpState.ROLLED_BACK, 0, T0 + 3))
    await store.run(_open(client, player, "t2", "deposit", OpState.ROLLED_BACK, 0, T0 + 4))
    await store.run(_open(client, player, "v1", "withdraw", OpState.ROLLED_BACK, 9, T0 + 6))
    totals = await one(store, a.OpenOperationTotals())
    assert totals == [
        a.OpenTotal(client.id, "EUR", "held", "withdraw", 2, 10, 0, T0 + 1),
        a.OpenTotal(client.id, "EUR", "pending", "deposit", 1, 11, 0, T0 + 2),
    ]
    page, total = await one(store, a.ListTombstones())
    assert total == 2
    assert [o.ext_id for o in page] == ["t2", "t1"]
    page, total = await one(store, a.ListTombstones(client_id=client.id, offset=1, limit=1))
    assert (total, [o.ext_id for o in page]) == (2, ["t1"])
    _, none = await one(store, a.ListTombstones(client_id=client.id + 1))
    assert none == 0

"""Credentials: missing, invalid and malformed Basic auth; one client's credentials against
another client's players; JDB domains, keys and agents that do not belong together.

Every refusal must move nothing: each test ends by checking the balances it could have
touched, and the ledger audit.
"""

from __future__ import annotations

import base64

import httpx
from tests.security import calls
from tests.security.world import OPENING_MINOR, World, basic

from gamewallet.core.money import UNIT
from gamewallet.service import admin
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.store import ops
from gamewallet.store.port import do

#: Malformed or wrong Authorization headers (and what they are); every one is a plain refusal.
BAD_AUTH: list[tuple[str, str | None]] = [
    ("missing", None),
    ("empty", ""),
    ("scheme only", "Basic"),
    ("not base64", "Basic !!!not-base64!!!"),
    ("another scheme", "Bearer abc.def"),
    ("no colon", "Basic " + base64.b64encode(b"no-colon").decode()),
    ("no user", "Basic " + base64.b64encode(b":only-password").decode()),
    ("not UTF-8", "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()),
    ("oversized", "Basic " + "A" * 5000),
    ("unknown user", basic("nobody", "whatever")),
]


async def balances_untouched(services: Services, world: World) -> None:
    """Every player of the world still has exactly its opening balance; audit clean."""
    clients = await services.store.run(do(ops.ListClients()))
    players = {
        "seamless": [s.player for s in world.seamless],
        "hrg": [h.user for h in world.hrg],
        "jdb": [j.uid for j in world.jdb],
    }
    for client in clients:
        for name in players[client.protocol]:
            try:
                player = await services.store.run(admin.get_player(client, name))
            except Exception:  # noqa: BLE001, S112 - the player belongs to the other client
                continue
            assert player.cash.balance.available_minor == OPENING_MINOR, (client.name, name)
    assert await services.store.run(admin.audit()) == []


async def test_seamless_bad_basic_auth_is_401_with_a_challenge(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    side = world.seamless[0]
    for what, authorization in BAD_AUTH:
        for endpoint, body in (
            ("getBalance", None),
            ("withdraw", calls.seamless_withdraw(side)),
        ):
            response = await calls.seamless(http, side, endpoint, body, authorization=authorization)
            assert response.status_code == 401, what
            assert response.headers["www-authenticate"].lower().startswith("basic"), what
            assert response.content == b"", what
    await balances_untouched(services, world)


async def test_seamless_wrong_password_is_401(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    side = world.seamless[0]
    wrong = basic(side.username, side.password + "x")
    other = basic(side.username, world.seamless[1].password)
    for authorization in (wrong, other):
        body = calls.seamless_withdraw(side)
        response = await calls.seamless(http, side, "withdraw", body, authorization=authorization)
        assert response.status_code == 401
    await balances_untouched(services, world)


async def test_hrg_bad_basic_auth_is_1001(
    http: httpx.AsyncClient, world: World, services: Services, clock: FakeClock
) -> None:
    side = world.hrg[0]
    for what, authorization in BAD_AUTH:
        deposit = {
            "agentId": side.agent,
            "userId": side.user,
            "amount": "10",
            "transactionCode": "tc1",
        }
        for name, body in (("get_balance", calls.hrg_balance(side)), ("deposit", deposit)):
            response = await calls.hrg(http, side, name, body, clock, authorization=authorization)
            assert response.status_code == 401, what
            assert response.json()["code"] == "1001", what
            assert "data" not in response.json()
    await balances_untouched(services, world)


async def test_seamless_credentials_of_one_client_reach_no_player_of_another(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    mine, theirs = world.seamless
    # B's credentials with A's session token: the token is unknown to B.
    for endpoint, body in (
        ("getBalance", {"token": mine.token}),
        ("verifySession", {"token": mine.token}),
        ("withdraw", calls.seamless_withdraw(mine)),
        ("deposit", calls.seamless_withdraw(mine)),
    ):
        response = await calls.seamless(http, theirs, endpoint, body)
        assert response.status_code == 200
        assert response.json()["errorCode"] == 102, (endpoint, response.text)
    # A rollback of an id A opened, sent with B's credentials, cannot touch A's hold.
    opened = calls.seamless_withdraw(mine)
    held = await calls.seamless(http, mine, "withdraw", opened)
    assert "errorCode" not in held.json()
    rollback = {"token": mine.token, "mmTransactionId": opened["mmTransactionId"]}
    response = await calls.seamless(http, theirs, "rollbackWithdrawal", rollback)
    assert response.json().get("errorCode") == 102
    balance = await calls.seamless(http, mine, "getBalance")
    assert balance.json()["balance"]["amount"] == (OPENING_MINOR - 15_000) / UNIT
    await calls.seamless(http, mine, "rollbackWithdrawal", rollback)
    await balances_untouched(services, world)


async def test_hrg_agent_cannot_name_another_agent_or_its_users(
    http: httpx.AsyncClient, world: World, services: Services, clock: FakeClock
) -> None:
    mine, theirs = world.hrg
    # My credentials, their agentId: 2002 whatever the call.
    deposit = {
        "agentId": theirs.agent,
        "userId": theirs.user,
        "amount": "5",
        "transactionCode": "x1",
    }
    for name, body in (
        ("get_balance", calls.hrg_balance(theirs)),
        ("deposit", deposit),
        ("create_user", {"agentId": theirs.agent, "userId": "newuser"}),
    ):
        response = await calls.hrg(http, mine, name, body, clock)
        assert response.json()["code"] == "2002", (name, response.text)
    # My agentId, their user: that user does not exist for me.
    withdraw = {
        "agentId": mine.agent,
        "userId": theirs.user,
        "allWithdraw": True,
        "transactionCode": "x2",
    }
    response = await calls.hrg(http, mine, "withdraw", withdraw, clock)
    assert response.json()["code"] == "3001"
    listed = await calls.hrg(http, mine, "get_balance", calls.hrg_balance(mine, theirs.user), clock)
    assert listed.json()["code"] in ("0000", "3001")
    assert theirs.user not in listed.text
    await balances_untouched(services, world)


async def test_jdb_domains_keys_and_agents_must_belong_together(
    http: httpx.AsyncClient, world: World, services: Services, clock: FakeClock
) -> None:
    mine, theirs = world.jdb
    info = {"action": 15, "uid": mine.uid}
    assert await calls.jdb_status(http, mine, info, clock) == "0000"
    # Their domain code with a payload made with my key: cannot be read.
    assert await calls.jdb_status(http, mine, info, clock, dc=theirs.dc) == "9006"
    # My domain, a payload under my key but naming their agent: refused.
    assert await calls.jdb_status(http, mine, {**info, "parent": theirs.parent}, clock) == "9003"
    # My domain and key, their player: not mine.
    foreign = {"action": 19, "uid": theirs.uid, "serialNo": "s1", "amount": -1}
    assert await calls.jdb_status(http, mine, foreign, clock) == "7501"
    # Unknown or too-short domain codes.
    assert await calls.jdb_status(http, mine, info, clock, dc="zz") == "9003"
    assert await calls.jdb_status(http, mine, info, clock, dc="z") == "9002"
    await balances_untouched(services, world)

"""Transfers beyond the golden cases: what is stored, replays after the purge, one-time
tickets, unexpected failures, and concurrent calls (real concurrency on PostgreSQL; the SQLite
store serializes them). Every test ends with a clean audit (the ``world`` fixture)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from gamewallet.core.money import UNIT
from gamewallet.core.states import OpState
from gamewallet.service import admin
from gamewallet.service.common import NS_WIRE, FakeClock
from gamewallet.service.context import Services
from gamewallet.service.hrg import DEFAULT_TICKET_TTL_S, IDEMPOTENCY_SCOPE
from gamewallet.store import ops
from gamewallet.store.port import do
from gamewallet.store.records import PlayerRecord

from .conftest import Api, World

SEED_WITHDRAW = {
    "agentId": "hrgag",
    "userId": "hrgpl0001",
    "allWithdraw": False,
    "transactionCode": "1660914288283",
    "amount": "100",
    "freeCredit": "50",
}
SEED_RESPONSE = (
    b'{"code":"0000","data":{"agentId":"hrgag","userId":"hrgpl0001","currency":"THB",'
    b'"withdrawAmount":"-150.0","currentBalance":"0.0","currentFreeCredit":"0.0"}}'
)


async def _player(
    services: Services, world: World, user: str, agent: str = "hrgag"
) -> PlayerRecord:
    player = await services.store.run(
        do(ops.GetPlayer(client_id=world.agents[agent].id, external_id=user))
    )
    assert player is not None
    return player


async def test_a_transfer_is_one_completed_wire_operation(
    api: Api, services: Services, world: World, clock: FakeClock
) -> None:
    status, _, raw = await api.call("withdraw", SEED_WITHDRAW)
    assert (status, raw) == (200, SEED_RESPONSE)
    agent = world.agents["hrgag"]
    operation = await services.store.run(
        do(ops.GetOperation(client_id=agent.id, ns=NS_WIRE, ext_id="1660914288283"))
    )
    assert operation is not None
    assert (operation.kind, operation.state) == ("withdraw", OpState.COMPLETED)
    assert (operation.amount_minor, operation.free_minor) == (100 * UNIT, 50 * UNIT)
    assert operation.created_at_ms == clock.now_ms()
    assert {k: operation.detail[k] for k in ("preBalance", "preFreeCredit")} == {
        "preBalance": 100 * UNIT,
        "preFreeCredit": 50 * UNIT,
    }
    assert (operation.detail["afterBalance"], operation.detail["afterFreeCredit"]) == (0, 0)
    stored = await services.store.run(
        do(ops.GetIdempotency(agent.id, IDEMPOTENCY_SCOPE, "1660914288283"))
    )
    assert stored is not None
    assert stored.response == SEED_RESPONSE


async def test_replay_after_the_stored_response_is_purged(
    api: Api, services: Services, clock: FakeClock
) -> None:
    """The operation outlives the idempotency record and still answers repeats the same."""
    _, _, first = await api.call("withdraw", SEED_WITHDRAW)
    clock.advance(8 * 24 * 3600)
    purged = await services.store.run(do(ops.PurgeIdempotency(clock.now_ms(), 100)))
    assert purged >= 1
    status, _, again = await api.call("withdraw", SEED_WITHDRAW)
    assert (status, again) == (200, first)
    _, answer, _ = await api.call("withdraw", {**SEED_WITHDRAW, "amount": "99"})
    assert answer == {"code": "4003", "desc": "Duplicate transaction code"}


async def test_launch_ticket_is_short_lived_and_single_use(
    api: Api, services: Services, clock: FakeClock
) -> None:
    _, answer, _ = await api.call("launch_lobby", {"agentId": "hrgag", "userId": "hrgpl0001"})
    token = answer["data"]["url"].split("ticket=")[1].split("&")[0]
    ticket = await services.store.run(do(ops.GetSession(token)))
    assert ticket is not None
    assert ticket.kind == "ticket"
    assert ticket.expires_at_ms == clock.now_ms() + DEFAULT_TICKET_TTL_S * 1000
    assert await services.store.run(do(ops.MarkSessionUsed(token, clock.now_ms())))
    assert not await services.store.run(do(ops.MarkSessionUsed(token, clock.now_ms())))
    _, again, _ = await api.call("launch_lobby", {"agentId": "hrgag", "userId": "hrgpl0001"})
    assert again["data"]["url"] != answer["data"]["url"]


async def test_unexpected_failure_is_9999_with_a_request_id(
    api: Api,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def broken(use_case: Any) -> Any:
        use_case.close()
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services.store, "run", broken)
    response = await api.http.post("/api/withdraw", json=SEED_WITHDRAW, headers=api.headers())
    monkeypatch.undo()
    assert (response.status_code, response.json()) == (
        200,
        {"code": "9999", "desc": "Unknown error"},
    )
    request_id = response.headers["x-request-id"]
    assert "disk on fire" not in response.text
    assert request_id in capsys.readouterr().out


async def test_a_disabled_agent_is_refused(api: Api, services: Services, world: World) -> None:
    await services.store.run(do(ops.UpdateClient(world.agents["hrgag"].id, {"disabled": True})))
    await services.clients.reload()
    status, answer, _ = await api.call("get_balance", {"agentId": "hrgag", "allUser": True})
    assert (status, answer) == (401, {"code": "1001", "desc": "Authorization failed"})


async def test_player_flags_do_not_block_transfers(
    api: Api, services: Services, world: World
) -> None:
    """HRG has no player-state codes: a player blocked in the back office can still be paid
    out by the agent (blocking must not trap the agent's money in the game wallet)."""
    await services.store.run(admin.set_blocked(world.agents["hrgag"], "hrgpl0001", True))
    _, answer, raw = await api.call("withdraw", SEED_WITHDRAW)
    assert raw == SEED_RESPONSE, answer


# --- concurrency -------------------------------------------------------------------------


async def test_concurrent_withdrawals_take_exactly_what_is_affordable(
    api: Api, services: Services, world: World
) -> None:
    """100 cash, 30 calls of 7: exactly 14 succeed, the rest are 4001, nothing overdraws."""
    calls = [
        api.call(
            "withdraw",
            {**SEED_WITHDRAW, "transactionCode": f"c{i}", "amount": "7", "freeCredit": None},
        )
        for i in range(30)
    ]
    results = await asyncio.gather(*calls)
    codes = sorted(answer["code"] for _, answer, _ in results)
    assert codes == ["0000"] * 14 + ["4001"] * 16
    balances = sorted(
        answer["data"]["currentBalance"] for _, answer, _ in results if answer["code"] == "0000"
    )
    assert balances == sorted(f"{100 - 7 * k}.0" for k in range(1, 15))
    player = await _player(services, world, "hrgpl0001")
    assert player.cash.balance.posted_minor == 2 * UNIT


async def test_concurrent_identical_deposits_apply_once(
    api: Api, services: Services, world: World
) -> None:
    body = {"agentId": "hrgag", "userId": "hrgpl0001", "transactionCode": "same", "amount": "5"}
    results = await asyncio.gather(*(api.call("deposit", body) for _ in range(12)))
    assert {raw for _, _, raw in results} == {
        (
            b'{"code":"0000","data":{"agentId":"hrgag","userId":"hrgpl0001","currency":"THB",'
            b'"depositAmount":"5.0","currentBalance":"105.0","currentFreeCredit":"50.0"}}'
        )
    }
    player = await _player(services, world, "hrgpl0001")
    assert player.cash.balance.posted_minor == 105 * UNIT


async def test_one_code_for_two_users_at_once_succeeds_once(
    api: Api, services: Services, world: World
) -> None:
    bodies = [
        {"agentId": "hrgag", "userId": user, "transactionCode": "race", "amount": "1"}
        for user in ("hrgpl0001", "hrgpl0002") * 4
    ]
    results = await asyncio.gather(*(api.call("deposit", body) for body in bodies))
    codes = sorted(answer["code"] for _, answer, _ in results)
    # The winner's user repeats get the replay; the other user's calls are 4003.
    assert codes == ["0000"] * 4 + ["4003"] * 4
    one = await _player(services, world, "hrgpl0001")
    two = await _player(services, world, "hrgpl0002")
    assert one.cash.balance.posted_minor - 100 * UNIT + two.cash.balance.posted_minor == UNIT


async def test_concurrent_deposits_respect_the_agent_credit_limit(
    api: Api, services: Services, world: World
) -> None:
    """ltdag may go 1000 below zero; 25 deposits of 100 (max 500 each): 10 succeed."""
    calls = [
        api.call(
            "deposit",
            {"agentId": "ltdag", "userId": "ltdpl01", "transactionCode": f"l{i}", "amount": "100"},
            agent="ltdag",
        )
        for i in range(25)
    ]
    results = await asyncio.gather(*calls)
    codes = sorted(answer["code"] for _, answer, _ in results)
    assert codes == ["0000"] * 10 + ["4006"] * 15
    player = await _player(services, world, "ltdpl01", agent="ltdag")
    assert player.cash.balance.posted_minor == 1000 * UNIT


async def test_concurrent_mixed_traffic_keeps_the_books_balanced(
    api: Api, services: Services, world: World
) -> None:
    """Deposits and withdrawals on both buckets of two players interleave; the final
    balances equal the successful movements (the audit then checks the ledger)."""
    calls = []
    for i in range(20):
        body: dict[str, Any] = {
            "agentId": "hrgag",
            "userId": "hrgpl0001" if i % 2 else "hrgpl0002",
            "transactionCode": f"m{i}",
            "freeCredit": "1",
        }
        if i % 3:
            calls.append(api.call("deposit", {**body, "amount": "3"}))
        else:
            calls.append(api.call("withdraw", {**body, "amount": "2", "allWithdraw": False}))
    results = await asyncio.gather(*calls)
    assert all(answer["code"] in ("0000", "4001", "4002") for _, answer, _ in results)
    _, listing, _ = await api.call("get_balance", {"agentId": "hrgag", "allUser": True})
    moment = "2026-01-01T08:00:00.000+0800"
    query = {"agentId": "hrgag", "startTime": moment, "endTime": moment, "pageSize": 2000}
    _, log, _ = await api.call("get_transfer_operation_log", query)
    succeeded = sum(1 for _, answer, _ in results if answer["code"] == "0000")
    assert log["data"]["total"] == succeeded
    for item in listing["data"]["list"]:
        records = [r for r in log["data"]["list"] if r["userId"] == item["userId"]]
        start = (Decimal(100), Decimal(50)) if item["userId"] == "hrgpl0001" else (0, 0)
        cash = start[0] + sum(Decimal(r["amount"]) for r in records)
        free = start[1] + sum(Decimal(r["freeCredit"]) for r in records)
        assert (Decimal(item["balance"]), Decimal(item["freeCredit"])) == (cash, free)
        for r in records:
            assert Decimal(r["preBalance"]) + Decimal(r["amount"]) == Decimal(r["afterBalance"])

"""The HRG client against our real HRG server (in-process, SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tests.clients.support import HRG_AGENT, HRG_CLIENT, HRG_URL, Script, units

from gamewallet.clients.hrg import HrgClient, HrgError, HrgOutcomeUnknown
from gamewallet.service.common import FakeClock


async def test_players_and_balances(hrg: HrgClient) -> None:
    user = await hrg.create_user("alice01", balance_minor=units(100), free_credit_minor=units(50))
    assert (user.agent_id, user.user_id) == (HRG_AGENT, "alice01")
    assert (user.balance_minor, user.free_credit_minor) == (units(100), units(50))
    await hrg.create_user("bob01")
    with pytest.raises(HrgError) as exists:
        await hrg.create_user("bob01")
    assert exists.value.code == "3002"

    page = await hrg.get_balance(["alice01", "bob01"])
    by_user = {row.user_id: row for row in page.items}
    assert by_user["alice01"].balance_minor == units(100)
    assert by_user["alice01"].free_credit_minor == units(50)
    assert by_user["alice01"].currency == "THB"
    assert by_user["bob01"].balance_minor == 0
    non_zero = await hrg.get_balance(all_user=True, filter_non_zero=True, page=1, page_size=10)
    assert [row.user_id for row in non_zero.items] == ["alice01"]
    assert non_zero.total == 1
    with pytest.raises(ValueError, match="at most 100"):
        await hrg.get_balance([f"u{n}" for n in range(101)])


async def test_deposit_and_withdraw_move_exact_amounts(hrg: HrgClient) -> None:
    await hrg.create_user("carol01")
    deposit = await hrg.deposit("carol01", "D1", units(10) + 1, free_credit_minor=units(2))
    assert deposit.amount_minor == units(12) + 1
    assert (deposit.balance_minor, deposit.free_credit_minor) == (units(10) + 1, units(2))
    partial = await hrg.withdraw("carol01", "W1", amount_minor=units(3), free_credit_minor=1)
    assert partial.amount_minor == -(units(3) + 1)
    assert (partial.balance_minor, partial.free_credit_minor) == (units(7) + 1, units(2) - 1)
    # The same code and content again: HRG replays the original answer.
    assert (
        await hrg.withdraw("carol01", "W1", amount_minor=units(3), free_credit_minor=1) == partial
    )
    with pytest.raises(HrgError) as reused:
        await hrg.withdraw("carol01", "W1", amount_minor=units(4))
    assert reused.value.code == "4003"
    with pytest.raises(HrgError) as short:
        await hrg.withdraw("carol01", "W2", amount_minor=units(8))
    assert (short.value.code, short.value.http_status) == ("4001", 200)
    everything = await hrg.withdraw("carol01", "W3", all_withdraw=True)
    assert everything.amount_minor == -(units(9))
    assert (everything.balance_minor, everything.free_credit_minor) == (0, 0)


async def test_transfers_can_be_looked_up_and_listed(hrg: HrgClient, clock: FakeClock) -> None:
    start = datetime.fromtimestamp(clock.now_ms() / 1000, UTC) - timedelta(minutes=1)
    await hrg.create_user("dave01")
    await hrg.deposit("dave01", "D1", units(5))
    clock.advance(1)
    await hrg.withdraw("dave01", "W1", amount_minor=units(2), free_credit_minor=0)
    found = await hrg.check_transfer_operation("W1")
    assert (found.transaction_code, found.user_id, found.type) == ("W1", "dave01", "withdraw")
    assert (found.amount_minor, found.free_credit_minor) == (-units(2), 0)
    assert (found.pre_balance_minor, found.after_balance_minor) == (units(5), units(3))
    assert found.created_at is not None
    assert found.created_at.timestamp() * 1000 == pytest.approx(clock.now_ms(), abs=1)
    with pytest.raises(HrgError) as missing:
        await hrg.check_transfer_operation("never")
    assert missing.value.code == "4004"
    end = datetime.fromtimestamp(clock.now_ms() / 1000, UTC) + timedelta(minutes=1)
    log = await hrg.get_transfer_operation_log(start, end, user_id="dave01", page=1, page_size=10)
    assert [(t.transaction_code, t.amount_minor) for t in log.items] == [
        ("D1", units(5)),
        ("W1", -units(2)),
    ]
    assert log.total == 2


async def test_launch_urls(hrg: HrgClient) -> None:
    await hrg.create_user("erin01")
    lobby = await hrg.launch_lobby("erin01", lang="en")
    game = await hrg.launch_game("erin01", extra={"gameCode": "slot1"})
    assert lobby.startswith("https://games.example/play?ticket=")
    assert "user=erin01" in game
    assert lobby != game  # a fresh one-time ticket each time


async def test_auth_and_clock_errors_are_typed(script: Script, clock: FakeClock) -> None:
    wrong = HrgClient(
        HRG_URL,
        client_id=HRG_CLIENT,
        client_secret="not-it",
        agent_id=HRG_AGENT,
        clock=clock,
        transport=script,
    )
    with pytest.raises(HrgError) as denied:
        await wrong.create_user("frank01")
    assert (denied.value.code, denied.value.http_status) == ("1001", 401)
    await wrong.aclose()
    late = FakeClock(clock.now_ms() - 3_600_000)
    skewed = HrgClient(
        HRG_URL,
        client_id=HRG_CLIENT,
        client_secret="hrg-secret",
        agent_id=HRG_AGENT,
        clock=late,
        transport=script,
    )
    with pytest.raises(HrgError) as stale:
        await skewed.create_user("frank01")
    assert stale.value.code == "1002"
    await skewed.aclose()


async def test_no_answer_is_outcome_unknown(hrg: HrgClient, script: Script) -> None:
    await hrg.create_user("gina01")
    script.then("drop")
    with pytest.raises(HrgOutcomeUnknown) as dropped:
        await hrg.deposit("gina01", "D1", units(1))
    assert dropped.value.maybe_sent
    # It was applied although the caller could not know: the lookup tells.
    assert (await hrg.check_transfer_operation("D1")).amount_minor == units(1)
    script.then({"unexpected": True})
    with pytest.raises(HrgOutcomeUnknown, match="without an HRG envelope"):
        await hrg.get_balance(["gina01"])


async def test_a_refused_connection_was_never_sent(clock: FakeClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = HrgClient(
        HRG_URL,
        client_id=HRG_CLIENT,
        client_secret="s",
        agent_id=HRG_AGENT,
        clock=clock,
        transport=httpx.MockTransport(refuse),
    )
    with pytest.raises(HrgOutcomeUnknown) as refused:
        await client.deposit("x", "D1", 1)
    assert not refused.value.maybe_sent
    with pytest.raises(ValueError, match="transactionCode"):
        await client.deposit("x", "C" * 31, 1)
    await client.aclose()


def test_xts_comes_from_the_clock(hrg: HrgClient, clock: FakeClock) -> None:
    assert hrg.xts() == "2026-01-01T08:00:00.000+0800"
    clock.advance(1.234)
    assert hrg.xts() == "2026-01-01T08:00:01.234+0800"
    assert "secret" not in repr(hrg)

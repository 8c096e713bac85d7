"""The JDB client against our real JDB server (in-process, SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.clients.support import JDB_DC, JDB_IV, JDB_PARENT, JDB_URL, Script, units

from gamewallet.clients.jdb import JdbClient, JdbError, JdbOutcomeUnknown, PlayerStatusOp
from gamewallet.protocols.jdb.crypto import decrypt_payload
from gamewallet.service.common import FakeClock


async def test_players_info_status_and_balances(jdb: JdbClient) -> None:
    await jdb.create_player("alice01", "Alice", credit_allocated_minor=units(100))
    await jdb.create_player("bob01", "Bob")
    with pytest.raises(JdbError) as exists:
        await jdb.create_player("bob01", "Bob")
    assert (exists.value.status, exists.value.text) == ("7602", "Account already exist")
    info = await jdb.player_info("alice01")
    assert (info.uid, info.balance_minor, info.parent) == ("alice01", units(100), JDB_PARENT)
    assert (info.username, info.currency, info.locked, info.closed) == (
        "Alice",
        "THB",
        False,
        False,
    )
    await jdb.set_player_status("alice01", PlayerStatusOp.LOCK)
    assert (await jdb.player_info("alice01")).locked
    await jdb.set_player_status("alice01", PlayerStatusOp.UNLOCK)
    assert not (await jdb.player_info("alice01")).locked
    balances = await jdb.balances(["bob01", "alice01", "bob01"])
    assert [(b.uid, b.balance_minor) for b in balances] == [("bob01", 0), ("alice01", units(100))]
    with pytest.raises(JdbError) as unknown:
        await jdb.balances(["alice01", "nobody"])
    assert unknown.value.status == "9998"
    assert "nobody" in unknown.value.text
    with pytest.raises(ValueError, match="distinct uids"):
        await jdb.balances([f"u{n}" for n in range(101)])


async def test_transfers_are_exact_and_once_per_serial_no(jdb: JdbClient) -> None:
    await jdb.create_player("carol01", "Carol")
    deposit = await jdb.deposit("carol01", "S1", units(10) + 120, remark="in")
    assert (deposit.serial_no, deposit.amount_minor) == ("S1", units(10) + 120)
    assert deposit.user_balance_minor == units(10) + 120
    assert deposit.agent_cash_balance_minor == -(units(10) + 120)
    assert deposit.pid > 0
    assert deposit.pay_date is not None
    withdraw = await jdb.withdraw("carol01", "S2", units(3))
    assert (withdraw.amount_minor, withdraw.user_balance_minor) == (-units(3), units(7) + 120)
    with pytest.raises(JdbError) as repeated:
        await jdb.withdraw("carol01", "S2", units(3))
    assert repeated.value.status == "6005"
    with pytest.raises(JdbError) as short:
        await jdb.withdraw("carol01", "S3", units(8))
    assert short.value.status == "6001"
    everything = await jdb.withdraw("carol01", "S4", all_cash_out=True)
    assert (everything.amount_minor, everything.user_balance_minor) == (-(units(7) + 120), 0)
    with pytest.raises(JdbError) as empty:
        await jdb.withdraw("carol01", "S5", all_cash_out=True)
    assert empty.value.status == "6002"
    with pytest.raises(ValueError, match="3 decimal places"):
        await jdb.deposit("carol01", "S6", 1)  # 0.0001 has 4 decimal places
    with pytest.raises(ValueError, match="letters and digits"):
        await jdb.deposit("carol01", "S-7", units(1))


async def test_lookup_and_history(jdb: JdbClient, clock: FakeClock) -> None:
    start = datetime.fromtimestamp(clock.now_ms() / 1000, UTC) - timedelta(minutes=1)
    await jdb.create_player("dave01", "Dave")
    await jdb.deposit("dave01", "S1", units(5), remark="first")
    clock.advance(2)
    await jdb.withdraw("dave01", "S2", units(2))
    (found,) = await jdb.check_transfer("S2")
    assert (found.uid, found.action, found.amount_minor) == ("dave01", "withdraw", -units(2))
    assert (found.before_minor, found.after_minor) == (units(5), units(3))
    assert found.date is not None
    with pytest.raises(JdbError) as missing:
        await jdb.check_transfer("S9")
    assert missing.value.status == "9015"
    end = datetime.fromtimestamp(clock.now_ms() / 1000, UTC) + timedelta(minutes=1)
    history = await jdb.transfer_history("dave01", start, end)
    assert [(h.serial_no, h.action, h.amount_minor, h.balance_minor) for h in history] == [
        ("S1", "deposit", units(5), units(5)),
        ("S2", "withdraw", -units(2), units(3)),
    ]
    assert history[0].remark == "first"


async def test_games_block_withdrawals_until_kicked_out(jdb: JdbClient) -> None:
    await jdb.create_player("erin01", "Erin", credit_allocated_minor=units(10))
    with pytest.raises(JdbError) as idle:
        await jdb.in_game("erin01")
    assert idle.value.status == "7505"
    path = await jdb.launch_url("erin01", lang="en", g_type="0", m_type="8001")
    assert "ticket=" in path
    where = await jdb.in_game("erin01")
    assert (where.g_type, where.m_type, where.balance_minor) == ("0", "8001", units(10))
    assert [(b.uid, b.balance_minor) for b in await jdb.online_users()] == [("erin01", units(10))]
    with pytest.raises(JdbError) as playing:
        await jdb.withdraw("erin01", "S1", units(1))
    assert playing.value.status == "6901"
    await jdb.deposit("erin01", "S2", units(1))  # deposits are not affected
    await jdb.kick_out("erin01")
    assert await jdb.online_users() == []
    assert (await jdb.withdraw("erin01", "S3", units(1))).user_balance_minor == units(10)


async def test_envelope_errors_and_unknown_outcomes(
    jdb: JdbClient, script: Script, clock: FakeClock
) -> None:
    await jdb.create_player("gina01", "Gina")
    stale = JdbClient(
        JDB_URL,
        dc=JDB_DC,
        parent=JDB_PARENT,
        key="0123456789abcdef",
        iv=JDB_IV,
        clock=FakeClock(clock.now_ms() - 60_000),
        transport=script,
    )
    with pytest.raises(JdbError) as late:
        await stale.player_info("gina01")
    assert late.value.status == "9005"
    await stale.aclose()
    wrong_key = JdbClient(
        JDB_URL,
        dc=JDB_DC,
        parent=JDB_PARENT,
        key="x" * 16,
        iv=JDB_IV,
        clock=clock,
        transport=script,
    )
    with pytest.raises(JdbError) as garbled:
        await wrong_key.player_info("gina01")
    assert garbled.value.status == "9006"
    await wrong_key.aclose()
    script.then("drop")
    with pytest.raises(JdbOutcomeUnknown):
        await jdb.deposit("gina01", "S1", units(1))
    (applied,) = await jdb.check_transfer("S1")  # it happened all the same
    assert applied.amount_minor == units(1)
    script.then({"no": "status"})
    with pytest.raises(JdbOutcomeUnknown, match="without a JDB status"):
        await jdb.player_info("gina01")


def test_the_payload_carries_action_ts_and_parent(jdb: JdbClient, clock: FakeClock) -> None:
    x = jdb.encode(19, {"uid": "u1", "amount": 1})
    text = decrypt_payload(x, "0123456789abcdef", JDB_IV)
    assert text == f'{{"action":19,"ts":{clock.now_ms()},"parent":"testag","uid":"u1","amount":1}}'
    assert "0123456789abcdef" not in repr(jdb)

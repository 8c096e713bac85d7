"""Operator transfer records against our real HRG and JDB servers, through every recovery path.

The records live in the same database as the server (SQLite or PostgreSQL). Faults come from
the scripted transport: "drop" loses the answer *after* the server processed the request,
"lost" loses the request before the server sees it, and a mapping is an answer someone else
gave (a 6012 from a busy server, a 9015 from a lagging replica). Pauses advance the fake clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tests.clients.support import Script, units

from gamewallet.clients.hrg import HrgClient
from gamewallet.clients.jdb import JdbClient
from gamewallet.clients.transfers import (
    HrgGateway,
    JdbGateway,
    TransferBook,
    TransferFailed,
    TransferOutcomeUnknown,
    TransferPolicy,
    TransferState,
)
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services

IN_PROGRESS = {"status": "6012", "err_text": "Serial no is in progress"}
NOT_THERE = {"status": "9015", "err_text": "Data does not exist"}


def pauses(clock: FakeClock) -> Callable[[float], Coroutine[Any, Any, None]]:
    """A sleep that moves the fake clock instead of waiting."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return sleep


def hrg_book(services: Services, hrg: HrgClient, clock: FakeClock, **policy: Any) -> TransferBook:
    return TransferBook(
        services.store,
        HrgGateway(hrg),
        clock=clock,
        policy=TransferPolicy(**policy),
        sleep=pauses(clock),
    )


def jdb_book(services: Services, jdb: JdbClient, clock: FakeClock, **policy: Any) -> TransferBook:
    return TransferBook(
        services.store,
        JdbGateway(jdb),
        clock=clock,
        policy=TransferPolicy(**policy),
        sleep=pauses(clock),
    )


async def hrg_cash(hrg: HrgClient, user: str) -> tuple[int, int]:
    (row,) = (await hrg.get_balance([user])).items
    return row.balance_minor, row.free_credit_minor


async def jdb_cash(jdb: JdbClient, uid: str) -> int:
    return (await jdb.player_info(uid)).balance_minor


# --- HRG ---------------------------------------------------------------------------------------


async def test_hrg_a_clean_call_succeeds_at_once(
    services: Services, hrg: HrgClient, script: Script, clock: FakeClock
) -> None:
    await hrg.create_user("u1")
    book = hrg_book(services, hrg, clock)
    record = await book.deposit("u1", units(10), free_minor=units(1), remark="welcome")
    assert record.state == TransferState.SUCCEEDED
    assert (record.attempts, record.last_error, record.kind) == (1, None, "deposit")
    assert record.result is not None
    assert record.result["source"] == "call"
    assert (record.result["amount_minor"], record.result["free_minor"]) == (units(10), units(1))
    assert script.log[-1] == "deposit"
    assert len(record.transfer_id) <= 30
    assert await book.get(record.transfer_id) == record


async def test_hrg_timeout_then_check_says_it_happened(
    services: Services, hrg: HrgClient, script: Script, clock: FakeClock
) -> None:
    await hrg.create_user("u1")
    book = hrg_book(services, hrg, clock)
    script.log.clear()
    script.then("drop")
    record = await book.deposit("u1", units(10))
    assert script.log == ["deposit", "check_transfer_operation"]
    assert record.state == TransferState.SUCCEEDED
    assert record.attempts == 1  # learned, not re-sent
    assert record.result is not None
    assert record.result["source"] == "lookup"
    assert record.last_error == "connection failed: ReadError"
    assert await hrg_cash(hrg, "u1") == (units(10), 0)


async def test_hrg_a_lost_request_is_sent_again_with_the_same_code(
    services: Services, hrg: HrgClient, script: Script, clock: FakeClock
) -> None:
    await hrg.create_user("u1", balance_minor=units(50))
    book = hrg_book(services, hrg, clock)
    script.log.clear()
    script.then("lost")
    record = await book.withdraw("u1", units(20))
    assert script.log == ["withdraw", "check_transfer_operation", "withdraw"]
    assert record.state == TransferState.SUCCEEDED
    assert record.attempts == 2
    assert record.amount_minor == -units(20)
    assert await hrg_cash(hrg, "u1") == (units(30), 0)
    (found,) = [await hrg.check_transfer_operation(record.transfer_id)]
    assert found.amount_minor == -units(20)


async def test_hrg_a_refusal_fails_the_record(
    services: Services, hrg: HrgClient, clock: FakeClock
) -> None:
    await hrg.create_user("u1", balance_minor=units(5))
    book = hrg_book(services, hrg, clock)
    with pytest.raises(TransferFailed) as failed:
        await book.withdraw("u1", units(6))
    record = failed.value.record
    assert record.state == TransferState.FAILED
    assert record.last_error is not None
    assert record.last_error.startswith("4001")
    stored = await book.get(record.transfer_id)
    assert stored is not None
    assert stored.state == TransferState.FAILED
    assert await hrg_cash(hrg, "u1") == (units(5), 0)


async def test_hrg_unknown_outcome_stays_pending_until_resolved(
    services: Services, hrg: HrgClient, script: Script, clock: FakeClock
) -> None:
    await hrg.create_user("u1")
    book = hrg_book(services, hrg, clock, attempts_max=1, lookups_max=1)
    script.then("drop", "lost")  # applied, answer lost; then the lookup is lost too
    with pytest.raises(TransferOutcomeUnknown) as unknown:
        await book.deposit("u1", units(7))
    assert unknown.value.record.state == TransferState.PENDING
    assert [r.id for r in await book.pending()] == [unknown.value.record.id]
    report = await book.resolve_pending()
    assert (report.succeeded, report.failed, report.pending) == (1, 0, 0)
    assert report.records[0].result is not None
    assert report.records[0].result["amount_minor"] == units(7)
    assert await book.pending() == []
    assert await hrg_cash(hrg, "u1") == (units(7), 0)


async def test_hrg_never_sent_fails_only_after_the_xts_window(
    services: Services, hrg: HrgClient, script: Script, clock: FakeClock
) -> None:
    await hrg.create_user("u1")
    book = hrg_book(services, hrg, clock)
    # A crash between writing the record and sending it: the server never heard of it.
    crashed = await book.open("u1", "deposit", units(3))
    early = await book.resolve_pending()
    assert (early.succeeded, early.failed, early.pending) == (0, 0, 1)  # a late copy could land
    clock.advance(331)
    script.log.clear()
    late = await book.resolve_pending()
    assert script.log == ["check_transfer_operation"]
    assert (late.succeeded, late.failed, late.pending) == (0, 1, 0)
    failed = await book.get(crashed.transfer_id)
    assert failed is not None
    assert failed.state == TransferState.FAILED
    assert failed.last_error is not None
    assert failed.last_error.startswith("4004")
    assert await hrg_cash(hrg, "u1") == (0, 0)


async def test_hrg_resolve_can_send_what_was_never_sent(
    services: Services, hrg: HrgClient, clock: FakeClock
) -> None:
    await hrg.create_user("u1")
    book = hrg_book(services, hrg, clock)
    await book.open("u1", "deposit", units(3), free_minor=units(1))
    report = await book.resolve_pending(resend=True)
    assert (report.succeeded, report.failed, report.pending) == (1, 0, 0)
    assert await hrg_cash(hrg, "u1") == (units(3), units(1))


async def test_hrg_withdraw_everything_and_id_reuse(
    services: Services, hrg: HrgClient, script: Script, clock: FakeClock
) -> None:
    await hrg.create_user("u1", balance_minor=units(4), free_credit_minor=units(2))
    book = hrg_book(services, hrg, clock)
    record = await book.withdraw("u1", all_out=True, transfer_id="ALL1")
    assert record.amount_minor is None
    assert record.result is not None
    assert record.result["total_minor"] == -units(6)
    assert await hrg_cash(hrg, "u1") == (0, 0)
    script.log.clear()
    again = await book.withdraw("u1", all_out=True, transfer_id="ALL1")
    assert again == record
    assert script.log == []  # a settled record is not sent again
    with pytest.raises(ValueError, match="already used"):
        await book.deposit("u1", units(1), transfer_id="ALL1")


async def test_two_resolvers_settle_a_record_once(
    services: Services, hrg: HrgClient, clock: FakeClock
) -> None:
    await hrg.create_user("u1")
    first = hrg_book(services, hrg, clock)
    second = hrg_book(services, hrg, clock)
    record = await first.open("u1", "deposit", units(9))
    reports = await asyncio.gather(
        first.resolve_pending(resend=True), second.resolve_pending(resend=True)
    )
    assert sum(r.succeeded for r in reports) >= 1
    assert sum(r.failed for r in reports) == 0
    settled = await first.get(record.transfer_id)
    assert settled is not None
    assert settled.state == TransferState.SUCCEEDED
    assert await hrg_cash(hrg, "u1") == (units(9), 0)  # the server applied the code once


# --- JDB ---------------------------------------------------------------------------------------


async def test_jdb_timeout_then_action_55_says_it_happened(
    services: Services, jdb: JdbClient, script: Script, clock: FakeClock
) -> None:
    await jdb.create_player("u1", "U1")
    book = jdb_book(services, jdb, clock)
    script.log.clear()
    script.then("drop")
    record = await book.deposit("u1", units(10), remark="r1")
    assert script.log == ["jdb:19", "jdb:55"]
    assert record.state == TransferState.SUCCEEDED
    assert record.result is not None
    assert (record.result["source"], record.result["amount_minor"]) == ("lookup", units(10))
    assert record.result["pid"] > 0
    assert await jdb_cash(jdb, "u1") == units(10)


async def test_jdb_6005_on_a_retry_means_look_it_up(
    services: Services, jdb: JdbClient, script: Script, clock: FakeClock
) -> None:
    await jdb.create_player("u1", "U1")
    book = jdb_book(services, jdb, clock)
    script.log.clear()
    # Applied but unanswered; a first lookup that does not see it yet (a lagging replica);
    # the re-send is then refused with 6005, and the next lookup finds it.
    script.then("drop", NOT_THERE)
    record = await book.deposit("u1", units(10))
    assert script.log == ["jdb:19", "jdb:55", "jdb:19", "jdb:55"]
    assert record.state == TransferState.SUCCEEDED
    assert record.attempts == 2
    assert record.last_error is not None
    assert record.last_error.startswith("6005")
    assert await jdb_cash(jdb, "u1") == units(10)  # once


async def test_jdb_6012_is_retried_with_the_same_serial_no(
    services: Services, jdb: JdbClient, script: Script, clock: FakeClock
) -> None:
    await jdb.create_player("u1", "U1", credit_allocated_minor=units(20))
    book = jdb_book(services, jdb, clock)
    script.log.clear()
    before = clock.now_ms()
    script.then(IN_PROGRESS)
    record = await book.withdraw("u1", units(5))
    assert script.log == ["jdb:19", "jdb:19"]
    assert record.state == TransferState.SUCCEEDED
    assert record.attempts == 2
    assert clock.now_ms() > before  # it waited before trying again
    script.log.clear()
    script.then("drop", IN_PROGRESS)  # the lookup is answered "in progress" once
    second = await book.withdraw("u1", units(5))
    assert script.log == ["jdb:19", "jdb:55", "jdb:55"]
    assert second.state == TransferState.SUCCEEDED
    assert await jdb_cash(jdb, "u1") == units(10)


async def test_jdb_9015_fails_a_never_sent_transfer_after_the_ts_window(
    services: Services, jdb: JdbClient, clock: FakeClock
) -> None:
    await jdb.create_player("u1", "U1")
    book = jdb_book(services, jdb, clock)
    crashed = await book.open("u1", "deposit", units(3))
    assert (await book.resolve_pending()).pending == 1
    clock.advance(61)
    report = await book.resolve_pending()
    assert (report.succeeded, report.failed, report.pending) == (0, 1, 0)
    failed = await book.get(crashed.transfer_id)
    assert failed is not None
    assert failed.last_error is not None
    assert failed.last_error.startswith("9015")
    assert await jdb_cash(jdb, "u1") == 0


async def test_jdb_refusals_fail_the_record(
    services: Services, jdb: JdbClient, clock: FakeClock
) -> None:
    await jdb.create_player("u1", "U1", credit_allocated_minor=units(2))
    book = jdb_book(services, jdb, clock)
    with pytest.raises(TransferFailed) as short:
        await book.withdraw("u1", units(3))
    assert short.value.record.last_error is not None
    assert short.value.record.last_error.startswith("6001")
    await jdb.launch_url("u1", g_type="0")
    with pytest.raises(TransferFailed) as playing:
        await book.withdraw("u1", units(1))
    assert playing.value.record.last_error is not None
    assert playing.value.record.last_error.startswith("6901")
    with pytest.raises(TransferFailed) as free_credit:
        await book.deposit("u1", units(1), free_minor=units(1))  # JDB has no free credit
    assert free_credit.value.record.attempts == 1
    assert await jdb_cash(jdb, "u1") == units(2)


async def test_jdb_cash_out_everything(
    services: Services, jdb: JdbClient, clock: FakeClock
) -> None:
    await jdb.create_player("u1", "U1", credit_allocated_minor=units(2) + 500)
    book = jdb_book(services, jdb, clock)
    record = await book.withdraw("u1", all_out=True)
    assert record.result is not None
    assert record.result["amount_minor"] == -(units(2) + 500)
    assert await jdb_cash(jdb, "u1") == 0

"""Concurrent calls: the same id from many connections, and races between the phases.

The requests go through the whole app with ``asyncio.gather`` over httpx's ASGI transport on
the test's own event loop: on PostgreSQL they really run at once, on one pooled connection
each, and serialize on the player's row lock; on SQLite the store serializes them anyway.
Whatever the interleaving, each id is applied at most once, every identical request gets
the same bytes, and the ledger audits clean (checked by the ``world`` fixture).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gamewallet.core.money import UNIT
from gamewallet.core.states import OpState
from gamewallet.store import ops
from gamewallet.store.port import do

from .conftest import Wallet, World

COPIES = 40


def _withdraw(token: str, tx: str, amount: Any = 230) -> dict[str, Any]:
    return {
        "token": token,
        "mmTransactionId": tx,
        "amount": {"amount": amount, "currencyCode": "XAG"},
    }


def _rollback(token: str, tx: str) -> dict[str, Any]:
    return {"token": token, "mmTransactionId": tx, "rollbackReason": "timeout"}


async def test_identical_withdraws_apply_once(wallet: Wallet, world: World) -> None:
    """40 copies of one withdraw at once: one hold, 40 identical answers."""
    token = world.tokens["$token"]
    answers = await asyncio.gather(
        *(wallet.post("withdraw", _withdraw(token, "same")) for _ in range(COPIES))
    )
    assert {status for status, _ in answers} == {200}
    assert {raw for _, raw in answers} == {
        b'{"mmTransactionId":"same","balance":{"amount":51800,"currencyCode":"XAG"}}'
    }
    assert await world.available("p1") == 51800 * UNIT
    player = await world.player("p1")
    assert player.cash.balance.held_minor == 230 * UNIT


async def test_identical_confirms_post_once(wallet: Wallet, world: World) -> None:
    """40 copies of one confirm at once: posted once, 40 identical answers."""
    token = world.tokens["$token"]
    await wallet.ok("withdraw", _withdraw(token, "w1"))
    answers = await asyncio.gather(
        *(wallet.post("confirmWithdrawal", _withdraw(token, "w1")) for _ in range(COPIES))
    )
    assert len({raw for _, raw in answers}) == 1
    assert json.loads(answers[0][1])["balance"]["amount"] == 51800
    player = await world.player("p1")
    assert (player.cash.balance.posted_minor, player.cash.balance.held_minor) == (51800 * UNIT, 0)


async def test_identical_payments_debit_and_notify_once(wallet: Wallet, world: World) -> None:
    """40 copies of one payment at once: one debit, one queued callback."""
    request = {
        "token": world.tokens["$token"],
        "cpOrderId": "order-1",
        "serverId": "10001",
        "productId": "wm.spin.1",
        "productPrice": 4.99,
    }
    answers = await asyncio.gather(
        *(wallet.post("payment/initiate", request) for _ in range(COPIES))
    )
    assert {raw for _, raw in answers} == {
        b'{"cpOrderId":"order-1","balance":{"amount":52025.01,"currencyCode":"XAG"}}'
    }
    messages, total = await world.services.store.run(do(ops.ListOutbox()))
    assert total == 1
    assert messages[0].payload["cpOrderId"] == "order-1"


async def test_a_rollback_racing_its_withdraw(wallet: Wallet, world: World) -> None:
    """Either order is fine; the money never stays held and the id ends ROLLED_BACK."""
    token = world.tokens["$token"]
    outcomes = set()
    for i in range(15):
        tx = f"race{i}"
        (_, held), (_, rolled) = await asyncio.gather(
            wallet.post("withdraw", _withdraw(token, tx)),
            wallet.post("rollbackWithdrawal", _rollback(token, tx)),
        )
        assert json.loads(rolled)["balance"]["amount"] == 52030
        withdraw_answer = json.loads(held)
        outcomes.add(withdraw_answer.get("errorCode", "held"))
        assert withdraw_answer in (
            {"errorCode": 110, "errorDescription": "Transaction already rolled back"},
            {"mmTransactionId": tx, "balance": {"amount": 51800, "currencyCode": "XAG"}},
        )
        operation = await world.operation(tx)
        assert operation is not None
        assert operation.state is OpState.ROLLED_BACK
        assert await world.available("p1") == 52030 * UNIT
    assert outcomes <= {110, "held"}


async def test_confirm_racing_rollback(wallet: Wallet, world: World) -> None:
    """Exactly one of them wins; the other is 108; the balance follows the winner."""
    token = world.tokens["$token"]
    expected = 52030 * UNIT
    for i in range(15):
        tx = f"race{i}"
        await wallet.ok("withdraw", _withdraw(token, tx, 10))
        (_, confirmed), (_, rolled) = await asyncio.gather(
            wallet.post("confirmWithdrawal", _withdraw(token, tx, 10)),
            wallet.post("rollbackWithdrawal", _rollback(token, tx)),
        )
        answers = [json.loads(confirmed), json.loads(rolled)]
        codes = [a.get("errorCode") for a in answers]
        assert sorted(codes, key=str) in ([108, None], [None, 108]), answers
        operation = await world.operation(tx)
        assert operation is not None
        if codes[0] is None:
            assert operation.state is OpState.CONFIRMED
            expected -= 10 * UNIT
        else:
            assert operation.state is OpState.ROLLED_BACK
        assert await world.available("p1") == expected


async def test_many_holds_never_overdraw(wallet: Wallet, world: World) -> None:
    """p2 has 100: 50 concurrent holds of 3 leave exactly 33 placed and 1 available."""
    token = world.tokens["$token_p2"]
    answers = await asyncio.gather(
        *(wallet.post("withdraw", _withdraw(token, f"h{i}", 3)) for i in range(50))
    )
    codes = [json.loads(raw).get("errorCode") for _, raw in answers]
    assert codes.count(None) == 33
    assert codes.count(106) == 17
    assert await world.available("p2") == 1 * UNIT


async def test_one_id_claimed_by_two_players(wallet: Wallet, world: World) -> None:
    """The same id from two players at once: one holds, the other is 109."""
    for i in range(10):
        tx = f"both{i}"
        (_, first), (_, second) = await asyncio.gather(
            wallet.post("withdraw", _withdraw(world.tokens["$token"], tx, 1)),
            wallet.post("withdraw", _withdraw(world.tokens["$token_p2"], tx, 1)),
        )
        codes = sorted(
            (json.loads(first).get("errorCode"), json.loads(second).get("errorCode")), key=str
        )
        assert codes == [109, None]
    assert await world.available("p1") + await world.available("p2") == (52130 - 10) * UNIT

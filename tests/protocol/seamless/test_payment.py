"""Payment initiation: one debit per cpOrderId and the signed callback queued with it.

The callback fields are the vendor's (spec 1.6): uid, serverId, cpOrderId, productId,
productPrice exactly as the request wrote it, extParams, ts in milliseconds and sign. The
message is queued in the same transaction as the debit (topic ``payment_callback``); delivery
is the worker's job. The vendor's own example must give the vendor's own signature.
"""

from __future__ import annotations

import json
from typing import Any

from gamewallet.core.money import UNIT, parse_amount
from gamewallet.core.states import OpState
from gamewallet.protocols.seamless.sign import verify_payment_sign
from gamewallet.service import admin, seamless
from gamewallet.service.common import NS_PAYMENT, FakeClock
from gamewallet.store import ops
from gamewallet.store.port import do
from gamewallet.store.records import OutboxRecord

from .conftest import PAYMENT_SECRET, Wallet, World


def _pay(token: str, order: str, price: Any, **extra: Any) -> dict[str, Any]:
    return {
        "token": token,
        "cpOrderId": order,
        "serverId": "10001",
        "productId": "wm.spin.1",
        "productPrice": price,
        **extra,
    }


async def _messages(world: World) -> list[OutboxRecord]:
    messages, _ = await world.services.store.run(do(ops.ListOutbox()))
    return messages


async def test_the_vendor_example_is_signed_as_the_vendor_signs(
    wallet: Wallet, world: World, clock: FakeClock
) -> None:
    """cpOrderId c9c3…, serverId 10001, uid test, 4.99, wm.spin.1, ts 1682319749000."""
    game = world.clients["game"]
    now = clock.now_ms()
    await world.services.store.run(admin.create_player(game, "test", "XAG", "t", 100 * UNIT, now))
    opened = await world.services.store.run(seamless.open_game_session(game, "test", 3600, now))
    clock.now = 1682319749000  # the vendor's ts (the session is still live: earlier than now)
    raw = (
        b'{"token":"%s","cpOrderId":"c9c35cf409344312146fa7546a94d1a6","serverId":"10001",'
        b'"productId":"wm.spin.1","productPrice":4.99,"extParams":"lv=3"}' % opened.token.encode()
    )
    status, answer = await wallet.post("payment/initiate", raw)
    assert status == 200
    assert answer == (
        b'{"cpOrderId":"c9c35cf409344312146fa7546a94d1a6",'
        b'"balance":{"amount":95.01,"currencyCode":"XAG"}}'
    )
    (message,) = await _messages(world)
    assert message.topic == seamless.TOPIC_PAYMENT_CALLBACK
    assert message.client_id == game.id
    assert dict(message.payload) == {
        "uid": "test",
        "serverId": "10001",
        "cpOrderId": "c9c35cf409344312146fa7546a94d1a6",
        "productId": "wm.spin.1",
        "productPrice": "4.99",
        "extParams": "lv=3",
        "ts": "1682319749000",
        "sign": "39E27178DE3254875D8470AB7A13D912",
    }
    assert message.due_at_ms == 1682319749000
    assert verify_payment_sign(dict(message.payload), PAYMENT_SECRET)


async def test_the_price_is_signed_as_written(wallet: Wallet, world: World) -> None:
    """4.990 stays "4.990" in the callback (and in its signature); a string works too."""
    await wallet.ok("payment/initiate", _pay("$token", "o1", "4.990"))
    raw = b'{"token":"$token","cpOrderId":"o2","serverId":"1","productId":"p","productPrice":4.50}'
    await wallet.ok("payment/initiate", raw.decode())
    first, second = sorted(await _messages(world), key=lambda m: m.id)
    assert first.payload["productPrice"] == "4.990"
    assert second.payload["productPrice"] == "4.50"
    assert second.payload["extParams"] == ""
    assert all(verify_payment_sign(dict(m.payload), PAYMENT_SECRET) for m in (first, second))
    assert await world.available("p1") == parse_amount("52020.51")


async def test_a_refused_payment_queues_nothing(wallet: Wallet, world: World) -> None:
    """106 (and every refusal) rolls back: no debit, no message."""
    assert await wallet.code("payment/initiate", _pay("$token_p2", "o1", 100.01)) == 106
    assert await _messages(world) == []
    assert await world.available("p2") == 100 * UNIT


async def test_a_repeat_after_the_retention_window(
    wallet: Wallet, world: World, clock: FakeClock
) -> None:
    """Past the window the same order is answered from the ledger (COMPLETED: replay, with
    the current balance) and queues nothing; other content is still 109."""
    await wallet.ok("payment/initiate", _pay("$token", "o1", 1))
    clock.advance(world.services.settings.idempotency_retention_s + 1)
    token = await world.session("p1")
    again = await wallet.ok("payment/initiate", _pay(token, "o1", 1))
    assert again == {"cpOrderId": "o1", "balance": {"amount": 52029, "currencyCode": "XAG"}}
    assert len(await _messages(world)) == 1
    _, raw = await wallet.post("payment/initiate", _pay(token, "o1", 2))
    assert json.loads(raw) == {
        "errorCode": 109,
        "errorDescription": "Transaction id reused with different content:"
        " the order belongs to another payment",
    }
    operation = await world.services.store.run(
        do(ops.GetOperation(client_id=world.clients["game"].id, ns=NS_PAYMENT, ext_id="o1"))
    )
    assert operation is not None
    assert operation.state is OpState.COMPLETED
    assert operation.amount_minor == 1 * UNIT


async def test_orders_are_apart_from_wallet_ids(wallet: Wallet, world: World) -> None:
    """A cpOrderId may equal an mmTransactionId: different namespaces."""
    await wallet.ok("payment/initiate", _pay("$token", "same", 1))
    withdraw = {
        "token": "$token",
        "mmTransactionId": "same",
        "amount": {"amount": 1, "currencyCode": "XAG"},
    }
    assert (await wallet.ok("withdraw", withdraw))["balance"]["amount"] == 52028

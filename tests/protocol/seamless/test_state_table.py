"""Every cell of the operation state table (core.states.TABLE), driven over HTTP.

For each cell the operation ``t1`` of player p1 is brought into the cell's state, the clock
moves past the idempotency retention window (so no stored answer short-cuts the table) and a
fresh session of the same player sends the cell's call with the same content. The answer,
the operation's state afterwards and p1's available balance must be what the cell says.
States a seamless call cannot produce (COMPLETED: the transfer protocols' single-phase state)
are planted directly in the store, posted like a transfer, to check the wallet still follows
the table for them. A ROLLED_BACK operation is tried both ways: voided, and a tombstone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gamewallet.core.money import UNIT
from gamewallet.core.states import TABLE, Call, OpState
from gamewallet.protocols.seamless.errors import ERROR_CODE
from gamewallet.service.common import NS_WIRE, FakeClock, move
from gamewallet.service.seamless import KIND_DEPOSIT, KIND_WITHDRAW
from gamewallet.store import ops
from gamewallet.store.port import UseCase, do

from .conftest import Wallet, World

AMOUNT = 230
START: int = 52030 * UNIT
ENDPOINT = {
    (KIND_WITHDRAW, Call.OPEN): "withdraw",
    (KIND_WITHDRAW, Call.CONFIRM): "confirmWithdrawal",
    (KIND_WITHDRAW, Call.ROLLBACK): "rollbackWithdrawal",
    (KIND_DEPOSIT, Call.OPEN): "deposit",
    (KIND_DEPOSIT, Call.CONFIRM): "confirmDeposit",
    (KIND_DEPOSIT, Call.ROLLBACK): "rollbackDeposit",
}
OPENS_AS = {KIND_WITHDRAW: OpState.HELD, KIND_DEPOSIT: OpState.PENDING}


def _cells() -> list[Any]:
    params = []
    for state, call in TABLE:
        for kind in (KIND_WITHDRAW, KIND_DEPOSIT):
            if state in OPENS_AS.values() and state is not OPENS_AS[kind]:
                continue  # a withdraw is never PENDING, a deposit never HELD
            variants = ["voided", "tombstone"] if state is OpState.ROLLED_BACK else ["-"]
            for variant in variants:
                name = f"{state.value if state else 'none'}-{call.value}-{kind}-{variant}"
                params.append(pytest.param(state, call, kind, variant, id=name))
    return params


def body(call: Call, token: str) -> dict[str, Any]:
    """The request of ``call`` on t1, always with the same content."""
    if call is Call.ROLLBACK:
        return {"token": token, "mmTransactionId": "t1", "rollbackReason": "test"}
    return {
        "token": token,
        "mmTransactionId": "t1",
        "amount": {"amount": AMOUNT, "currencyCode": "XAG"},
    }


def plant_completed(world: World, kind: str, now_ms: int) -> UseCase[None]:
    """A posted single-phase operation t1 of p1 (what a transfer protocol would leave)."""
    client = world.clients["game"]
    player = yield from do(ops.GetPlayer(player_id=world.players["p1"].id, lock=True))
    assert player is not None
    operation = yield from do(
        ops.InsertOperation(
            client.id,
            NS_WIRE,
            "t1",
            kind,
            player.id,
            "XAG",
            AMOUNT * UNIT,
            0,
            OpState.COMPLETED,
            now_ms,
        )
    )
    assert operation is not None
    sign = -1 if kind == KIND_WITHDRAW else 1
    yield from move(client, player, operation.id, now_ms, cash_minor=sign * AMOUNT * UNIT)


async def reach(
    state: OpState | None, kind: str, variant: str, wallet: Wallet, world: World, clock: FakeClock
) -> None:
    """Bring t1 into ``state``."""
    token = world.tokens["$token"]
    if state is None:
        return
    if state is OpState.COMPLETED:
        await world.services.store.run(plant_completed(world, kind, clock.now_ms()))
        return
    if variant != "tombstone":
        await wallet.ok(ENDPOINT[kind, Call.OPEN], body(Call.OPEN, token))
    if state is OpState.CONFIRMED:
        await wallet.ok(ENDPOINT[kind, Call.CONFIRM], body(Call.CONFIRM, token))
    if state is OpState.ROLLED_BACK:
        await wallet.ok(ENDPOINT[kind, Call.ROLLBACK], body(Call.ROLLBACK, token))


def expected_available(state: OpState | None, kind: str) -> int:
    """p1's available balance when t1 is in ``state``."""
    moved: int = AMOUNT * UNIT
    if kind == KIND_WITHDRAW:
        return (
            START - moved
            if state in (OpState.HELD, OpState.CONFIRMED, OpState.COMPLETED)
            else START
        )
    return START + moved if state in (OpState.CONFIRMED, OpState.COMPLETED) else START


@pytest.mark.parametrize(("state", "call", "kind", "variant"), _cells())
async def test_cell(
    state: OpState | None,
    call: Call,
    kind: str,
    variant: str,
    wallet: Wallet,
    world: World,
    clock: FakeClock,
) -> None:
    """The answer, the resulting state and the balance are what TABLE's cell says."""
    await reach(state, kind, variant, wallet, world, clock)
    before = await world.operation("t1")
    assert (before.state if before else None) is state
    clock.advance(world.services.settings.idempotency_retention_s + 1)
    token = await world.session("p1")

    status, raw = await wallet.post(ENDPOINT[kind, call], body(call, token))
    assert status == 200
    cell = TABLE[state, call]
    after = await world.operation("t1")
    if cell.error is not None:
        assert json.loads(raw)["errorCode"] == ERROR_CODE[cell.error]
        assert after == before, "a refusal changes nothing"
        final = state
    else:
        final = OPENS_AS[kind] if state is None and call is Call.OPEN else cell.next_state
        assert after is not None
        assert after.state is final
        expected = expected_available(final, kind)
        whole = expected // UNIT
        assert (
            raw == b'{"mmTransactionId":"t1","balance":{"amount":%d,"currencyCode":"XAG"}}' % whole
        )
    assert await world.available("p1") == expected_available(final, kind)


def test_every_cell_is_covered() -> None:
    """The parametrization visits every key of TABLE."""
    covered = {(p.values[0], p.values[1]) for p in _cells()}
    assert covered == set(TABLE)

"""Properties: exact amounts on the wire, and random call sequences against a model.

1. Any amount of at most 4 decimal places survives the wire exactly, both ways.
2. Any sequence of two-phase calls on a few ids gives, call by call, the answer an independent
   model of spec 1.3/1.4 predicts (written from the prose, not from ``core.states.TABLE``), and
   leaves the ledger sound. The use cases run on the in-memory store, which answers the same
   requests as SQLite and PostgreSQL (its contract suite says so), to try many sequences fast.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from gamewallet.core.errors import WalletError
from gamewallet.core.money import UNIT
from gamewallet.core.states import Call
from gamewallet.protocols.seamless import schemas
from gamewallet.protocols.seamless.errors import for_core
from gamewallet.service import admin, seamless
from gamewallet.store import open_store, ops
from gamewallet.store.port import do

START = 5  # units: small, so that holds run out and 106 happens
RETENTION_S = 3600

amounts = st.decimals(
    min_value=Decimal("0.0001"), max_value=Decimal(10**11), places=4, allow_nan=False
)


@given(amounts)
def test_amounts_are_exact_both_ways(value: Decimal) -> None:
    """A JSON number with up to 4 places becomes exact minor units and is written back equal,
    without exponent."""
    text = format(value, "f")
    minor, written = schemas.amount_minor(msgspec.Raw(text.encode()))
    assert written == text
    assert minor == int(value * UNIT)
    out = schemas.encode(schemas.wire_amount(minor, "XAG"))
    assert b"e" not in out.lower().replace(b"currencycode", b"")
    assert Decimal(json.loads(out, parse_float=Decimal)["amount"]) == value


@dataclass
class Operation:
    kind: str
    amount: int
    state: str  # "open", "confirmed", "rolled_back"
    tombstone: bool = False


@dataclass
class Model:
    """Spec 1.3/1.4 from the prose: one player, ids of one client."""

    posted: int = START * UNIT
    held: int = 0
    pending: int = 0
    operations: dict[str, Operation] = field(default_factory=dict)
    answered: dict[tuple[str, str], tuple[int | None, bytes]] = field(default_factory=dict)

    def call(self, endpoint: str, kind: str, call: Call, tx: str, amount: int | None) -> int | str:
        """The errorCode, "replay" for a stored answer, or "ok" (the model state moved)."""
        stored = self.answered.get((endpoint, tx))
        if stored is not None:
            return "replay" if stored[0] == amount else 109
        op = self.operations.get(tx)
        if op is not None and op.kind != kind:
            return 109
        if op is not None and amount is not None and not op.tombstone and op.amount != amount:
            return 109
        if call is Call.OPEN:
            if op is None:
                assert amount is not None
                if kind == "withdraw" and self.posted - self.held < amount:
                    return 106
                self.operations[tx] = Operation(kind, amount, "open")
                if kind == "withdraw":
                    self.held += amount
                else:
                    self.pending += amount
                return "ok"
            return 110 if op.state == "rolled_back" else "ok"
        if call is Call.CONFIRM:
            if op is None:
                return 107
            if op.state == "rolled_back":
                return 108
            if op.state == "open":
                op.state = "confirmed"
                if kind == "withdraw":
                    self.held -= op.amount
                    self.posted -= op.amount
                else:
                    self.pending -= op.amount
                    self.posted += op.amount
            return "ok"
        if op is None:
            self.operations[tx] = Operation(kind, 0, "rolled_back", tombstone=True)
            return "ok"
        if op.state == "confirmed":
            return 108
        if op.state == "open":
            op.state = "rolled_back"
            if kind == "withdraw":
                self.held -= op.amount
            else:
                self.pending -= op.amount
        return "ok"


ENDPOINTS = {
    ("withdraw", Call.OPEN): "withdraw",
    ("withdraw", Call.CONFIRM): "confirmWithdrawal",
    ("withdraw", Call.ROLLBACK): "rollbackWithdrawal",
    ("deposit", Call.OPEN): "deposit",
    ("deposit", Call.CONFIRM): "confirmDeposit",
    ("deposit", Call.ROLLBACK): "rollbackDeposit",
}
steps = st.lists(
    st.tuples(
        st.sampled_from(["withdraw", "deposit"]),
        st.sampled_from(list(Call)),
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=1, max_value=3),
    ),
    max_size=30,
)


def _render(outcome: seamless.Outcome) -> bytes:
    amount = schemas.wire_amount(outcome.balance_minor, outcome.currency)
    return schemas.encode(schemas.SeamlessTransactionResponse(outcome.ext_id, amount))


async def _run(sequence: list[tuple[str, Call, str, int]]) -> None:
    store = open_store("memory://")
    await store.start()
    try:
        new = admin.NewClient("seamless", "game", "u", "p")
        client = await store.run(admin.create_client(new, 0, b"key"))
        player = await store.run(admin.create_player(client, "p1", "XAG", "P", START * UNIT, 0))
        opened = await store.run(seamless.open_game_session(client, "p1", 3600, 0))
        model = Model()
        for index, (kind, call, tx, units) in enumerate(sequence):
            endpoint = ENDPOINTS[kind, call]
            amount = None if call is Call.ROLLBACK else units * UNIT
            request = seamless.WalletCall(
                client,
                endpoint,
                kind,
                call,
                opened.token,
                tx,
                amount,
                None if amount is None else "XAG",
            )
            try:
                body: bytes | None = await store.run(
                    seamless.wallet_call(request, index, RETENTION_S, _render)
                )
                got: int | None = None
            except WalletError as refusal:
                body, got = None, for_core(refusal.code)
            expected = model.call(endpoint, kind, call, tx, amount)
            where = f"step {index}: {endpoint} {tx} {units}"
            if isinstance(expected, int):
                assert got == expected, where
                continue
            assert got is None, f"{where}: refused with {got}"
            assert body is not None
            if expected == "replay":
                assert body == model.answered[endpoint, tx][1], f"{where}: not a replay"
                continue
            available = model.posted - model.held
            assert (
                json.loads(body)["balance"]["amount"]
                == json.loads(schemas.encode(schemas.wire_amount(available, "XAG")))["amount"]
            ), where
            model.answered[endpoint, tx] = (amount, body)
        record = await store.run(do(ops.GetPlayer(player_id=player.id)))
        assert record is not None
        balance = record.cash.balance
        assert (balance.posted_minor, balance.held_minor, balance.pending_credit_minor) == (
            model.posted,
            model.held,
            model.pending,
        )
        assert await store.run(admin.audit()) == []
    finally:
        await store.close()


@settings(max_examples=150, deadline=None)
@given(steps)
def test_random_sequences_follow_the_model(sequence: list[tuple[str, Call, str, int]]) -> None:
    """Every answer is the model's; balances and the audit agree at the end."""
    asyncio.run(_run(sequence))

"""Model-based property: any sequence of HRG transfers (with reused codes, overdrafts and
``allWithdraw``) leaves the players' buckets exactly where a plain dictionary model says,
answers repeats and conflicts as the idempotency rules say, and keeps the ledger sound.

Runs the use cases of :mod:`gamewallet.service.hrg` on the in-memory store (the same use
cases the SQLite and PostgreSQL stores run in the HTTP tests), so that hypothesis can try
many sequences quickly.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.money import UNIT
from gamewallet.service import admin, hrg
from gamewallet.service.common import FakeClock
from gamewallet.store import open_store
from gamewallet.store.port import Store, UseCase

USERS = ("p0", "p1")
START = {"p0": (100 * UNIT, 50 * UNIT), "p1": (0, 0)}


@dataclass(frozen=True)
class Step:
    """One call: a deposit or a withdraw (``everything`` = allWithdraw)."""

    kind: str
    user: str
    code: str
    cash_minor: int
    free_minor: int
    everything: bool = False


amounts = st.sampled_from([0, 1, 5000, 10 * UNIT, 50 * UNIT, 99 * UNIT + 9999, 150 * UNIT])
steps = st.builds(
    Step,
    kind=st.sampled_from(["deposit", "withdraw"]),
    user=st.sampled_from(USERS),
    code=st.sampled_from([f"c{i}" for i in range(6)]),
    cash_minor=amounts,
    free_minor=amounts,
    everything=st.booleans(),
)


def _render(t: hrg.Transfer) -> bytes:
    return (
        f"{t.transaction_code}|{t.kind}|{t.cash_minor}|{t.free_minor}|"
        f"{t.after_cash_minor}|{t.after_free_minor}"
    ).encode()


async def _run(store: Store, sequence: list[Step]) -> None:
    clock = FakeClock()
    new = admin.NewClient("hrg", "ag", "ag", "secret", "THB", None, {})
    agent = await store.run(admin.create_client(new, clock.now_ms(), b"k"))
    for user, (cash, free) in START.items():
        await store.run(
            admin.create_player(agent, user, "THB", user, cash, clock.now_ms(), free_minor=free)
        )
    model = dict(START)
    seen: dict[str, tuple[tuple[object, ...], bytes]] = {}
    for step in sequence:
        if step.kind == "deposit":
            key: tuple[object, ...] = ("d", step.user, step.cash_minor, step.free_minor)
            run = hrg.deposit(
                agent,
                hrg.DepositRequest(step.user, step.code, step.cash_minor, step.free_minor),
                clock.now_ms(),
                _render,
            )
        else:
            amounts_used = () if step.everything else (step.cash_minor, step.free_minor)
            key = ("w", step.user, step.everything, *amounts_used)
            run = hrg.withdraw(
                agent,
                hrg.WithdrawRequest(
                    step.user,
                    step.code,
                    step.everything,
                    0 if step.everything else step.cash_minor,
                    0 if step.everything else step.free_minor,
                ),
                clock.now_ms(),
                _render,
            )
        expected = _expect(model, seen, step, key)
        answer = await _outcome(store, run)
        if isinstance(answer, ErrorCode):
            assert answer == expected, (step, answer, expected)
            continue
        assert expected is None, (step, expected)
        if step.code in seen:
            assert answer == seen[step.code][1]
            continue
        cash, free = model[step.user]
        if step.kind == "deposit":
            model[step.user] = (cash + step.cash_minor, free + step.free_minor)
        elif step.everything:
            model[step.user] = (0, 0)
        else:
            model[step.user] = (cash - step.cash_minor, free - step.free_minor)
        seen[step.code] = (key, answer)
        assert answer.endswith(f"|{model[step.user][0]}|{model[step.user][1]}".encode())
        clock.advance(1)
    for user, (cash, free) in model.items():
        player = await store.run(admin.get_player(agent, user))
        assert (player.cash.balance.posted_minor, player.free.balance.posted_minor) == (cash, free)
    assert await store.run(admin.audit()) == []


async def _outcome(store: Store, run: UseCase[bytes]) -> bytes | ErrorCode:
    """The response bytes, or the refusal's code."""
    try:
        return await store.run(run)
    except WalletError as refusal:
        return refusal.code


def _expect(
    model: dict[str, tuple[int, int]],
    seen: dict[str, tuple[tuple[object, ...], bytes]],
    step: Step,
    key: tuple[object, ...],
) -> ErrorCode | None:
    """What the rules say this step must get (None = success or replay)."""
    if step.code in seen:
        return None if seen[step.code][0] == key else ErrorCode.ID_REUSED
    if step.kind == "withdraw" and not step.everything:
        cash, free = model[step.user]
        if step.cash_minor > cash:
            return ErrorCode.INSUFFICIENT_FUNDS
        if step.free_minor > free:
            return ErrorCode.INSUFFICIENT_FREE_CREDIT
    return None


@settings(max_examples=60, deadline=None)
@given(st.lists(steps, max_size=25))
def test_transfers_follow_the_model(sequence: list[Step]) -> None:
    async def main() -> None:
        store = open_store("memory://")
        await store.start()
        try:
            await _run(store, sequence)
        finally:
            await store.close()

    asyncio.run(main())

"""The random HRG calls both HRG differential suites send (PostgreSQL and SQLite fast paths
against the generic path), and how a call is answered: one generator, one renderer, so the
two suites exercise the same inputs."""

from __future__ import annotations

import random
from typing import Any, Protocol

from gamewallet.core.errors import WalletError
from gamewallet.protocols.hrg import schemas
from gamewallet.protocols.hrg.routes import _ok
from gamewallet.service import hrg
from gamewallet.store.port import Store
from gamewallet.store.records import ClientRecord

USERS = ("u0", "u1", "u2")
CURRENCY = "THB"
STEPS = 400
AMOUNTS = (0, 10_000, 25_000, 1_000_000, 90_000_000)  # the last is over max_amount


class Agent(Protocol):
    """What an answer needs of a suite's agent: its store and its client."""

    @property
    def store(self) -> Store: ...

    @property
    def client(self) -> ClientRecord: ...


def render_for(client: ClientRecord, kind: str) -> hrg.Render:
    """The HRG route's answer bytes for a deposit or withdraw of ``client``."""
    withdraw = kind == hrg.KIND_WITHDRAW
    data = schemas.HrgWithdrawData if withdraw else schemas.HrgDepositData
    reply = schemas.HrgWithdrawReply if withdraw else schemas.HrgDepositReply

    def render(t: hrg.Transfer) -> bytes:
        out: Any = data(
            client.name,
            t.user_id,
            t.currency,
            schemas.money(t.total_minor),
            schemas.money(t.after_cash_minor),
            schemas.money(t.after_free_minor),
        )
        return _ok(out, reply)

    return render


async def answer(agent: Agent, call: dict[str, Any], now_ms: int) -> tuple[Any, ...]:
    """Run ``call`` on the agent's store: ("ok", bytes) or ("error", code, detail)."""
    render = render_for(agent.client, call["kind"])
    if call["kind"] == hrg.KIND_WITHDRAW:
        request = hrg.WithdrawRequest(
            call["user"], call["code"], call["all"], call["cash"], call["free"]
        )
        use_case = hrg.withdraw(agent.client, request, now_ms, render)
    else:
        deposit = hrg.DepositRequest(call["user"], call["code"], call["cash"], call["free"])
        use_case = hrg.deposit(agent.client, deposit, now_ms, render)
    try:
        return ("ok", await agent.store.run(use_case))
    except WalletError as exc:
        return ("error", exc.code.name, exc.detail)


def random_call(rng: random.Random, used: list[dict[str, Any]]) -> dict[str, Any]:
    """A deposit or withdraw: mostly fresh codes, some reused, some identical repeats, unknown
    users, all-bucket withdraws and amounts over the limits."""
    if used and rng.random() < 0.15:
        return dict(rng.choice(used))  # an identical repeat
    kind = rng.choice([hrg.KIND_DEPOSIT, hrg.KIND_WITHDRAW])
    all_buckets = kind == hrg.KIND_WITHDRAW and rng.random() < 0.15
    cash, free = rng.choice(AMOUNTS), rng.choice(AMOUNTS[:3])
    if not all_buckets and not (cash or free):
        cash = 10_000
    return {
        "kind": kind,
        "user": rng.choice([*USERS, "ghost"]) if rng.random() < 0.05 else rng.choice(USERS),
        "code": f"c{rng.randrange(300)}" if rng.random() < 0.9 else f"c{rng.randrange(5)}",
        "all": all_buckets,
        "cash": 0 if all_buckets else cash,
        "free": 0 if all_buckets else free,
    }

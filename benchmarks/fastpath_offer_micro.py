"""CPU time of building one fast-path offer on the event loop (no store, no HTTP).

An offer is what ``service.seamless.wallet_call`` and the HRG routes' ``withdraw`` return
before the store runs it: the generic use case plus the request data, with the templates the
store fills in (``service.fastpath``). Two measurements, ``time.process_time`` over ``--offers``
calls each, rounds interleaved in one process:

- the whole offer: a seamless withdraw (a new ``mmTransactionId`` per call) and an HRG
  withdraw through the routes' own ``HrgApi`` (a new user and transaction code per call);
- the templates alone, derived afresh (``body_template`` + ``fingerprint_template``,
  ``hrg_template``) against the cached derivation the offers use (if this version has one).

    .venv/bin/python benchmarks/fastpath_offer_micro.py --offers 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Coroutine
from types import SimpleNamespace
from typing import Any

from gamewallet.core.states import Call
from gamewallet.protocols.hrg.routes import HrgApi
from gamewallet.protocols.seamless.routes import _render_tx
from gamewallet.service import fastpath, hrg, seamless
from gamewallet.store.fastpath import FastOffer
from gamewallet.store.records import ClientRecord

SEAMLESS = ClientRecord(7, "seamless", "bench", "bench", None, None, None, 16)
AGENT = ClientRecord(8, "hrg", "agent-1", "agent-1", None, "THB", None, 16)


class _Capture:
    """A store that hands the use case back instead of running it."""

    async def run(self, use_case: Any) -> Any:
        return use_case


def _result(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the capture store never suspends")


def _seamless_offer(n: int) -> Any:
    call = seamless.WalletCall(
        SEAMLESS, "withdraw", "withdraw", Call.OPEN, "tok", f"bench-{n}", 15_000, "EUR"
    )
    return seamless.wallet_call(call, 1_000_000, 3600, _render_tx)


def _hrg_api() -> HrgApi:
    services = SimpleNamespace(
        store=_Capture(),
        clock=SimpleNamespace(now_ms=lambda: 1_000_000),
        settings=SimpleNamespace(rate_limit_per_client=0),
    )
    return HrgApi(services)  # type: ignore[arg-type]


def _hrg_offer(api: HrgApi, n: int) -> Any:
    command = hrg.WithdrawRequest(f"user{n % 1000}", f"tx-{n}", False, 25_000, 0)
    return _result(api.withdraw(AGENT, command))


def _fresh_seamless(n: int) -> Any:
    ext_id = f"bench-{n}"
    call = seamless.WalletCall(
        SEAMLESS, "withdraw", "withdraw", Call.OPEN, "tok", ext_id, 15_000, "EUR"
    )
    fastpath.body_template(lambda b, c: _render_tx(seamless.Outcome(ext_id, b, c)))
    return fastpath.fingerprint_template(
        "withdraw", 15_000, "EUR", lambda pid: seamless.call_fingerprint(call, pid)
    )


def _render_offer(ext_id: str, balance: int, currency: str) -> bytes:
    return _render_tx(seamless.Outcome(ext_id, balance, currency))


def _cpu_per_call(fn: Callable[[int], Any], offers: int) -> float:
    start = time.process_time()
    for n in range(offers):
        fn(n)
    return (time.process_time() - start) / offers


def main(offers: int, rounds: int) -> None:
    api = _hrg_api()
    assert isinstance(_seamless_offer(0), FastOffer)
    assert isinstance(_hrg_offer(api, 0), FastOffer)
    cases: dict[str, Callable[[int], Any]] = {
        "seamless offer": _seamless_offer,
        "hrg offer": lambda n: _hrg_offer(api, n),
        "seamless templates, fresh": _fresh_seamless,
    }
    render = _render_offer
    if hasattr(fastpath, "seamless_body_template"):
        cases["seamless templates, cached"] = lambda n: (
            fastpath.seamless_body_template(render, f"bench-{n}"),
            fastpath.seamless_fingerprint_template(
                seamless.request_fingerprint, "withdraw", 15_000, "EUR"
            ),
        )
    totals: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(rounds):
        for name, fn in cases.items():
            cpu = _cpu_per_call(fn, offers)
            totals[name].append(cpu)
            print(f"round {r} {name:28s} {cpu * 1e6:7.2f} us CPU per call")
    for name, values in totals.items():
        print(f"best: {name:28s} {min(values) * 1e6:7.2f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    main(args.offers, args.rounds)

"""CPU time per wallet call of the SQLite store alone (no HTTP): fast path against generic.

Two stores on two fresh files, each with the same players and sessions; rounds of seamless
withdraw + confirmWithdrawal pairs, 64 callers at a time (so the writer forms batches as it
does under load), alternate between the two stores in one process. ``time.process_time``
(all threads of the process: event loop and writer) over each round, divided by its calls.

    .venv/bin/python benchmarks/sqlite_store_micro.py --pairs 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from gamewallet.core.states import Call
from gamewallet.protocols.seamless.routes import _render_tx
from gamewallet.service import admin, seamless
from gamewallet.service.common import FakeClock
from gamewallet.store.records import ClientRecord
from gamewallet.store.sqlite import SqliteStore

CONCURRENCY = 64


async def _setup(
    path: Path, fast: bool, players: int, clock: FakeClock
) -> tuple[SqliteStore, ClientRecord, list[str]]:
    store = SqliteStore(f"sqlite:///{path}", fast_path=fast)
    await store.start()
    new = admin.NewClient("seamless", "bench", "bench", "pw", None, None, {})
    client = await store.run(admin.create_client(new, clock.now_ms(), b"k" * 32))
    tokens = []
    for n in range(players):
        await store.run(admin.create_player(client, f"p{n}", "EUR", "", 10**12, clock.now_ms()))
        session, _ = await store.run(admin.open_session(client, f"p{n}", 86_400, clock.now_ms()))
        tokens.append(session.token)
    return store, client, tokens


async def _round(
    store: SqliteStore, client: ClientRecord, tokens: list[str], tag: str, pairs: int, now: int
) -> float:
    async def pair(n: int) -> None:
        token = tokens[n % len(tokens)]
        for endpoint, call in (("withdraw", Call.OPEN), ("confirmWithdrawal", Call.CONFIRM)):
            wc = seamless.WalletCall(
                client, endpoint, "withdraw", call, token, f"{tag}-{n}", 10_000, "EUR"
            )
            await store.run(seamless.wallet_call(wc, now, 3600, _render_tx))

    async def worker(first: int) -> None:
        for n in range(first, pairs, CONCURRENCY):
            await pair(n)

    start = time.process_time()
    await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
    return (time.process_time() - start) / (2 * pairs)


async def main(pairs: int, rounds: int, players: int, only: str | None = None) -> None:
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp:
        stores = {
            name: await _setup(Path(tmp) / f"{name}.db", fast, players, clock)
            for name, fast in (("fast", True), ("generic", False))
            if only in (None, name)
        }
        try:
            totals: dict[str, list[float]] = {name: [] for name in stores}
            for r in range(rounds):
                for name, (store, client, tokens) in stores.items():
                    cpu = await _round(store, client, tokens, f"r{r}", pairs, clock.now_ms())
                    totals[name].append(cpu)
                    print(f"round {r} {name:8s} {cpu * 1e6:7.1f} us CPU per call")
            best = {name: min(values) for name, values in totals.items()}
            if len(best) < 2:
                return
            print(
                f"best: fast {best['fast'] * 1e6:.1f} us, generic {best['generic'] * 1e6:.1f} us,"
                f" generic/fast = {best['generic'] / best['fast']:.2f}"
            )
        finally:
            for store, _, _ in stores.values():
                await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--players", type=int, default=500)
    parser.add_argument("--only", choices=["fast", "generic"], help="one store (for profiling)")
    args = parser.parse_args()
    asyncio.run(main(args.pairs, args.rounds, args.players, args.only))

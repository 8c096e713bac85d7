"""Seamless end to end, every piece a real process on loopback.

- the wallet: ``uvicorn gamewallet.app:app_factory`` with its in-process worker (payment
  callbacks, reconciler), set up with the ``gamewallet`` CLI;
- the game side: ``uvicorn gamewallet.clients.gameside:app_factory`` (queryWithdrawal /
  queryDeposit, the payment callback receiver) on the game's own database;
- a game process that plays with the SDK and dies (``os._exit``) before any confirm is sent;
- the game's ``gamewallet worker``, started afterwards, which delivers what the dead game decided.

Checked: the decided confirm is delivered later by the worker; the refused withdraw and the
undecided one are rolled back; the payment callback reaches the game signed; a hold the game
never recorded is rolled back by the wallet's reconciler; the ledger audit stays clean.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.worker.processes import (
    environment,
    eventually,
    free_port,
    gamewallet,
    log_of,
    run_cli,
    spawn,
    stop,
    uvicorn_process,
)
from tests.worker.support import extra_database

from gamewallet.clients.gameside import recorded_payment
from gamewallet.clients.seamless import SeamlessClient
from gamewallet.core.states import OpState
from gamewallet.store import open_store, ops
from gamewallet.store.port import Store, do

GAME_USER, GAME_PASSWORD = "game-user", "game-pass"
WALLET_AT_GAME, WALLET_AT_GAME_PASSWORD = "wallet", "wallet-at-game-pass"
PAYMENT_SECRET = "MKiLHWZvGPTq2258"
RECONCILE_AFTER_S = 10
DECIDE_WITHIN_S = 4
HTTP_TIMEOUT_S = 2

#: The game: bets 100.00 and decides to confirm; bets more than the balance (refused); bets
#: 7.00 and never decides. Then it dies without closing anything.
GAME_SCRIPT = """
import asyncio, os, sys
from gamewallet.clients.seamless import SeamlessClient, SeamlessError
from gamewallet.clients.settlement import GameWallet
from gamewallet.service.common import SystemClock
from gamewallet.settings import Settings
from gamewallet.store import open_store

async def play(token):
    s = Settings.from_env()
    store = open_store(s.database_url)
    await store.start()
    client = SeamlessClient(s.game_wallet_url, s.game_wallet_username, s.game_wallet_password,
                            timeout_s=s.http_timeout_s)
    game = GameWallet(store, client, SystemClock(), decide_within_s=s.settlement_decide_within_s)
    await game.withdraw(token, "e2e-bet", 100_0000, "EUR")
    await game.confirm("e2e-bet", detail={"round": 1, "result": "lost"})
    try:
        await game.withdraw(token, "e2e-big", 5000_0000, "EUR")
    except SeamlessError as exc:
        print("refused", exc.code, flush=True)
    await game.withdraw(token, "e2e-orphan", 7_0000, "EUR")
    print("dying", flush=True)
    os._exit(0)

asyncio.run(play(sys.argv[1]))
"""


@pytest.fixture(params=["sqlite", "postgres"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(wallet database, game database), migrated, of one kind."""
    if request.param == "sqlite":
        wallet, game = f"sqlite:///{tmp_path}/wallet.db", f"sqlite:///{tmp_path}/game.db"
        for url in (wallet, game):
            run_cli(environment(url), "db", "upgrade")
        yield wallet, game
        return
    admin_url: str = request.getfixturevalue("pg_admin_url")
    with extra_database(admin_url) as wallet, extra_database(admin_url) as game:
        yield wallet, game


async def operation_state(store: Store, client_id: int, ext_id: str) -> OpState | None:
    found = await store.run(do(ops.GetOperation(client_id=client_id, ns="wire", ext_id=ext_id)))
    return None if found is None else found.state


@pytest.mark.slow
async def test_seamless_end_to_end(databases: tuple[str, str], tmp_path: Path) -> None:
    wallet_db, game_db = databases
    game_port = free_port()
    game_url = f"http://127.0.0.1:{game_port}"
    cli_env = environment(wallet_db)
    added = json.loads(run_cli(
        cli_env, "--json", "client", "add", "seamless", "game",
        "--username", GAME_USER, "--password", GAME_PASSWORD,
        "--integration-url", game_url,
        "--integration-username", WALLET_AT_GAME,
        "--integration-password", WALLET_AT_GAME_PASSWORD,
        "--payment-callback-url", f"{game_url}/payment/callback",
        "--payment-secret", PAYMENT_SECRET,
    ))  # fmt: skip
    assert added["config"]["integration_password"] != WALLET_AT_GAME_PASSWORD  # masked
    client_id = int(added["id"])
    run_cli(cli_env, "player", "add", "game", "alice", "--currency", "EUR", "--balance", "1000")
    token = json.loads(run_cli(cli_env, "--json", "session", "open", "game", "alice"))["token"]

    wallet_env = environment(
        wallet_db,
        worker_in_process=1,
        worker_poll_s=0.2,
        worker_jobs_interval_s=0.5,
        reconcile_after_s=RECONCILE_AFTER_S,
        reconcile_retry_s=1,
        http_timeout_s=HTTP_TIMEOUT_S,
        worker_lease_s=10,
    )
    side_env = environment(
        game_db,
        worker_in_process=0,
        game_integration_username=WALLET_AT_GAME,
        game_integration_password=WALLET_AT_GAME_PASSWORD,
        game_payment_secret=PAYMENT_SECRET,
    )
    wallet_log, side_log = tmp_path / "wallet.log", tmp_path / "gameside.log"
    with (
        uvicorn_process("gamewallet.app:app_factory", wallet_env, wallet_log) as wallet_url,
        uvicorn_process("gamewallet.clients.gameside:app_factory", side_env, side_log,
                        port=game_port),
    ):  # fmt: skip
        game_env = environment(
            game_db,
            game_wallet_url=wallet_url,
            game_wallet_username=GAME_USER,
            game_wallet_password=GAME_PASSWORD,
            http_timeout_s=HTTP_TIMEOUT_S,
            settlement_decide_within_s=DECIDE_WITHIN_S,
            worker_poll_s=0.2,
        )
        game = await asyncio.create_subprocess_exec(
            sys.executable, "-c", GAME_SCRIPT, token, env=game_env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(game.communicate(), 60)
        assert game.returncode == 0, (out + err).decode()
        assert out.decode().split() == ["refused", "106", "dying"]

        wallet_store, game_store = open_store(wallet_db), open_store(game_db)
        await wallet_store.start()
        await game_store.start()
        try:
            # The game is dead; its confirm was never sent: the 100.00 is still only held.
            assert await operation_state(wallet_store, client_id, "e2e-bet") is OpState.HELD
            async with SeamlessClient(wallet_url, GAME_USER, GAME_PASSWORD, timeout_s=5) as api:
                before = await api.get_balance(token)
                assert before.amount_minor == (1000 - 100 - 7) * 10_000

                worker_log = tmp_path / "game-worker.log"
                worker = spawn(gamewallet("worker"), game_env, worker_log)
                try:

                    async def settled() -> bool:
                        states = [
                            await operation_state(wallet_store, client_id, ext_id)
                            for ext_id in ("e2e-bet", "e2e-big", "e2e-orphan")
                        ]
                        return states == [
                            OpState.CONFIRMED, OpState.ROLLED_BACK, OpState.ROLLED_BACK,
                        ]  # fmt: skip

                    await eventually(settled, timeout_s=60, what="settlements", log=worker_log)
                    bet = await game_store.run(
                        do(ops.GetSettlement(wallet="default", ext_id="e2e-bet"))
                    )
                    assert bet is not None
                    assert (bet.outcome, bet.detail["round"]) == ("confirmed", 1)

                    # A payment: the wallet's own worker calls the game side back, signed.
                    paid = await api.initiate_payment(token, "order-1", "10001", "gem", "4.99")
                    assert paid.balance.amount_minor == (1000 - 100) * 10_000 - 4_9900

                    async def called_back() -> bool:
                        return await recorded_payment(game_store, "order-1") is not None

                    await eventually(called_back, timeout_s=30, what="callback", log=wallet_log)

                    # A hold the game never recorded: the reconciler asks and rolls it back.
                    await api.withdraw(token, "e2e-unknown", 3_0000, "EUR")

                    async def reconciled() -> bool:
                        state = await operation_state(wallet_store, client_id, "e2e-unknown")
                        return state is OpState.ROLLED_BACK

                    await eventually(
                        reconciled, timeout_s=RECONCILE_AFTER_S + 30, what="reconciliation",
                        log=wallet_log,
                    )  # fmt: skip
                    after = await api.get_balance(token)
                finally:
                    assert stop(worker) == 0, log_of(worker_log)
            decisions, _ = await wallet_store.run(do(ops.ListReconciliations()))
            asked = {d.ext_id: (d.answer, d.action) for d in decisions}
            assert asked["e2e-unknown"] == ("NOT_FOUND", "rollback")
            assert "e2e-bet" not in asked  # the game's worker delivered it, not the reconciler
            assert after.amount_minor == (1000 - 100) * 10_000 - 4_9900
            assert await wallet_store.run(do(ops.Audit())) == []
        finally:
            await wallet_store.close()
            await game_store.close()

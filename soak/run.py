"""The soak run: set everything up, drive traffic under faults, drain, check, report.

Phases, each with its own deadline:

1. *setup*: a throwaway PostgreSQL cluster with a wallet and a game database (migrated with
   ``gamewallet db upgrade``), one client per protocol (``gamewallet client add``), the game
   side (Integration API + payment callback receiver), two wallet servers on one listening
   socket, two wallet workers;
2. *traffic*: the simulator's three scenarios and the durability prober, while the chaos loop
   ``kill -9``s a random server or worker every few seconds (restarting it at once) and
   crash-restarts PostgreSQL once;
3. *quiet*: every process up and healthy; the scenarios learn their leftover outcomes and
   compare their models with the server;
4. *drain*: the workers resolve every hold and pending credit (the reconciler asks the game)
   and deliver every payment callback;
5. *checks* (:func:`checks`), then the summary: calls, faults, violations. Exit status 0 only
   if there is no violation.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gamewallet.clients.gameside import PAYMENT_META_PREFIX
from gamewallet.clients.seamless import SeamlessClient
from gamewallet.clients.simulator.common import Credentials, Report, SimConfig
from gamewallet.clients.simulator.faults import Fault
from gamewallet.core.states import OpState
from gamewallet.service import admin
from gamewallet.service.common import NS_PAYMENT, NS_WIRE, SystemClock
from gamewallet.store import open_store, ops
from gamewallet.store.port import Store, do
from soak.cluster import Cluster, free_port
from soak.prober import Prober
from soak.processes import (
    Managed,
    base_env,
    gamewallet_argv,
    listening_socket,
    uvicorn_argv,
)
from soak.traffic import (
    SEAMLESS_OTHER_ERROR_RETRY_S,
    Phases,
    SoakHrg,
    SoakJdb,
    SoakSeamless,
    run_scenario,
)

CURRENCY = "THB"
PROBER_OPENING_MINOR = 100_000 * 10_000
HEALTHY_TIMEOUT_S = 60.0
SETUP_READY_TIMEOUT_S = 120.0
SCENARIO_END_TIMEOUT_S = 300.0
DRAIN_POLL_S = 0.5
LOG_TAIL_CHARS = 3000
#: After PostgreSQL is back, processes that fail to start are still blamed on the outage
#: for this long (their start may have begun while it was down).
DB_BACK_GRACE_S = 10.0


@dataclass(frozen=True)
class Profile:
    """How long and how hard one soak run goes."""

    name: str
    traffic_s: float
    players: int  # per protocol
    fault_rate: float
    server_kill_every_s: tuple[float, float]
    worker_kill_every_s: tuple[float, float]
    server_down_s: tuple[float, float]
    pg_restart_at: float  # fraction of the traffic window
    pg_down_s: float
    reconcile_after_s: int
    drain_timeout_s: float


PROFILES = {
    "short": Profile(
        "short",
        traffic_s=75.0,
        players=8,
        fault_rate=0.15,
        server_kill_every_s=(5.0, 10.0),
        worker_kill_every_s=(6.0, 12.0),
        server_down_s=(0.1, 1.5),
        pg_restart_at=0.45,
        pg_down_s=1.0,
        reconcile_after_s=15,
        drain_timeout_s=75.0,
    ),
    "long": Profile(
        "long",
        traffic_s=900.0,
        players=24,
        fault_rate=0.15,
        server_kill_every_s=(8.0, 25.0),
        worker_kill_every_s=(10.0, 30.0),
        server_down_s=(0.1, 3.0),
        pg_restart_at=0.5,
        pg_down_s=3.0,
        reconcile_after_s=20,
        drain_timeout_s=120.0,
    ),
}


@dataclass
class Secrets:
    """Every secret of one run: made fresh, and searched for in the logs at the end."""

    seamless_password: str = field(default_factory=lambda: "sp" + secrets.token_hex(12))
    hrg_secret: str = field(default_factory=lambda: "hs" + secrets.token_hex(12))
    jdb_key: str = field(default_factory=lambda: secrets.token_hex(8))
    jdb_iv: str = field(default_factory=lambda: secrets.token_hex(8))
    integration_password: str = field(default_factory=lambda: "ip" + secrets.token_hex(12))
    payment_secret: str = field(default_factory=lambda: "ps" + secrets.token_hex(12))
    installation: str = field(default_factory=lambda: "ik" + secrets.token_hex(16))

    def all(self) -> list[str]:
        """Every secret value (as it would appear in a log)."""
        return list(vars(self).values())


@dataclass
class Outcome:
    """What the run found."""

    calls: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


class Soak:
    """One soak run on PostgreSQL."""

    def __init__(self, profile: Profile, seed: int, keep: bool) -> None:
        self.profile = profile
        self.seed = seed
        self.keep = keep
        self.rng = random.Random(seed)  # noqa: S311 - fault timing, not cryptography
        self.root = Path(tempfile.mkdtemp(prefix="gamewallet-soak-"))
        self.cluster = Cluster(Path(tempfile.mkdtemp(prefix="gamewallet-soak-pg-")))
        self.secrets = Secrets()
        self.outcome = Outcome()
        self.servers: list[Managed] = []
        self.workers: list[Managed] = []
        self.game: Managed | None = None
        self.wallet_url = ""
        self.game_url = ""
        self.base_url = ""
        self.game_port = 0
        self.tokens: list[str] = []
        self.started = time.monotonic()
        #: (since, until) of the PostgreSQL outage, monotonic seconds; none yet.
        self.db_outage: tuple[float, float] = (math.inf, math.inf)

    def say(self, text: str) -> None:
        """One progress line, with the time since the start."""
        sys.stdout.write(f"[soak {time.monotonic() - self.started:6.1f}s] {text}\n")
        sys.stdout.flush()

    # --- setup -----------------------------------------------------------------------------

    def _cli(self, database_url: str, *args: str) -> str:
        env = base_env(
            GAMEWALLET_DATABASE_URL=database_url, GAMEWALLET_SECRET_KEY=self.secrets.installation
        )
        done = subprocess.run(
            gamewallet_argv(*args), env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"gamewallet {args[0]} failed: {done.stdout}{done.stderr}")
        return done.stdout

    async def setup(self) -> None:
        """Cluster, databases, clients, processes."""
        await asyncio.to_thread(self.cluster.start)
        self.wallet_url = await self.cluster.create_database("soak_wallet")
        self.game_url = await self.cluster.create_database("soak_game")
        await asyncio.to_thread(self._cli, self.wallet_url, "db", "upgrade")
        await asyncio.to_thread(self._cli, self.game_url, "db", "upgrade")
        self.say(f"PostgreSQL on 127.0.0.1:{self.cluster.port}, databases migrated")
        self.game_port = free_port()
        game = f"http://127.0.0.1:{self.game_port}"
        s = self.secrets
        clients = [
            (
                "client",
                *("add", "seamless", "soakgame", "--username", "soakgame"),
                *("--password", s.seamless_password, "--integration-url", game),
                *("--integration-username", "soakwallet"),
                *("--integration-password", s.integration_password),
                *("--payment-callback-url", f"{game}/payment/callback"),
                *("--payment-secret", s.payment_secret),
            ),
            (
                "client",
                *("add", "hrg", "soakagent", "--client-id", "soakhrg"),
                *("--client-secret", s.hrg_secret, "--currency", CURRENCY),
            ),
            (
                "client",
                *("add", "jdb", "soakdc", "--parent", "soakparent"),
                *("--key", s.jdb_key, "--iv", s.jdb_iv, "--currency", CURRENCY),
            ),
        ]
        for args in clients:
            await asyncio.to_thread(self._cli, self.wallet_url, *args)
        await self._start_processes()

    async def _start_processes(self) -> None:
        s, p = self.secrets, self.profile
        logs = self.root / "logs"
        logs.mkdir()
        common = {"GAMEWALLET_SECRET_KEY": s.installation, "GAMEWALLET_LOG_LEVEL": "INFO"}
        self.game = Managed(
            "game",
            uvicorn_argv("gamewallet.clients.gameside:app_factory", port=self.game_port),
            base_env(
                **common,
                GAMEWALLET_DATABASE_URL=self.game_url,
                GAMEWALLET_WORKER_IN_PROCESS="0",
                GAMEWALLET_GAME_INTEGRATION_USERNAME="soakwallet",
                GAMEWALLET_GAME_INTEGRATION_PASSWORD=s.integration_password,
                GAMEWALLET_GAME_PAYMENT_SECRET=s.payment_secret,
            ),
            logs / "game.log",
            health_url=f"http://127.0.0.1:{self.game_port}/healthz",
        )
        self.listener = listening_socket()
        port = self.listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        fd = self.listener.fileno()
        server_env = base_env(
            **common, GAMEWALLET_DATABASE_URL=self.wallet_url, GAMEWALLET_WORKER_IN_PROCESS="0"
        )
        self.servers = [
            Managed(
                f"server{i}",
                uvicorn_argv("gamewallet.app:app_factory", fd=fd),
                server_env,
                logs / f"server{i}.log",
                health_url=f"{self.base_url}/healthz",
                pass_fds=(fd,),
            )
            for i in (1, 2)
        ]
        worker_env = base_env(
            **common,
            GAMEWALLET_DATABASE_URL=self.wallet_url,
            GAMEWALLET_RECONCILE_AFTER_S=str(p.reconcile_after_s),
            GAMEWALLET_RECONCILE_RETRY_S="2",
            GAMEWALLET_WORKER_JOBS_INTERVAL_S="1",
            GAMEWALLET_WORKER_POLL_S="0.2",
            GAMEWALLET_WORKER_LEASE_S="6",
            GAMEWALLET_HTTP_TIMEOUT_S="2",
            GAMEWALLET_RETRY_SCHEDULE="0,1,2,4;every=4;window=3600",
        )
        self.workers = [
            Managed(f"worker{i}", gamewallet_argv("worker"), worker_env, logs / f"worker{i}.log")
            for i in (1, 2)
        ]
        for process in self.processes:
            process.start()
        for process in self.processes:
            await process.wait_healthy(HEALTHY_TIMEOUT_S)
        self.say(
            f"wallet on {self.base_url} (2 servers, 2 workers), game side on :{self.game_port}"
        )

    @property
    def processes(self) -> list[Managed]:
        game = [self.game] if self.game is not None else []
        return [*game, *self.servers, *self.workers]

    # --- traffic and faults -----------------------------------------------------------------

    def _config(self, protocol: str, credentials: Credentials, seed: int) -> SimConfig:
        p = self.profile
        return SimConfig(
            protocol=protocol,
            url=self.base_url,
            credentials=credentials,
            players=p.players,
            rounds=1_000_000 // p.players,
            faults=frozenset({Fault.DROP, Fault.DUP, Fault.TIMEOUT, Fault.REORDER}),
            fault_rate=p.fault_rate,
            seed=seed,
            concurrency=p.players,  # every player plays the whole window
            timeout_s=10.0,
            deadline_s=p.traffic_s + SCENARIO_END_TIMEOUT_S,
            other_error_retry_s=SEAMLESS_OTHER_ERROR_RETRY_S,
            setup_db=self.wallet_url if protocol == "seamless" else None,
            currency=CURRENCY,
        )

    def scenarios(self, phases: Phases) -> list[SoakSeamless | SoakHrg | SoakJdb]:
        """The simulator's three scenarios against the wallet."""
        s = self.secrets
        made: list[SoakSeamless | SoakHrg | SoakJdb] = []
        for index, protocol in enumerate(("seamless", "hrg", "jdb")):
            seed = self.seed * 10 + index
            report = Report(protocol, self.base_url, self.profile.players, 0, seed)
            if protocol == "seamless":
                creds = Credentials(username="soakgame", password=s.seamless_password)
                made.append(SoakSeamless(self._config(protocol, creds, seed), report, phases))
            elif protocol == "hrg":
                creds = Credentials(
                    client_id="soakhrg", client_secret=s.hrg_secret, agent="soakagent"
                )
                made.append(SoakHrg(self._config(protocol, creds, seed), report, phases))
            else:
                creds = Credentials(dc="soakdc", parent="soakparent", key=s.jdb_key, iv=s.jdb_iv)
                made.append(SoakJdb(self._config(protocol, creds, seed), report, phases))
        return made

    async def prober(self) -> Prober:
        """The prober's player and session, made in the wallet's database."""
        store = open_store(self.wallet_url, pool_size=1)
        await store.start()
        try:
            clients = await store.run(do(ops.ListClients(protocol="seamless")))
            client = clients[0]
            now_ms = SystemClock().now_ms()
            await store.run(
                admin.create_player(
                    client, "prober", CURRENCY, "prober", PROBER_OPENING_MINOR, now_ms
                )
            )
            session, _ = await store.run(admin.open_session(client, "prober", 24 * 3600, now_ms))
        finally:
            await store.close()
        self.tokens.append(session.token)
        http = SeamlessClient(
            self.base_url, "soakgame", self.secrets.seamless_password, timeout_s=5
        )
        return Prober(http, session.token, CURRENCY, PROBER_OPENING_MINOR, f"{self.seed:x}")

    async def chaos(self, phases: Phases) -> None:
        """Kill servers and workers at random moments during the window; crash PostgreSQL once."""
        p, loop = self.profile, asyncio.get_running_loop()
        start = loop.time()
        end = start + p.traffic_s
        next_server = start + self.rng.uniform(*p.server_kill_every_s)
        next_worker = start + self.rng.uniform(*p.worker_kill_every_s)
        pg_at = start + p.traffic_s * p.pg_restart_at
        pg_done = False
        while loop.time() < end:
            await asyncio.sleep(0.1)
            now = loop.time()
            if not pg_done and now >= pg_at:
                self.say(f"crash-restarting PostgreSQL ({p.pg_down_s:g} s down)")
                self.db_outage = (time.monotonic(), math.inf)
                await asyncio.to_thread(self.cluster.restart_after_crash, p.pg_down_s)
                self.db_outage = (self.db_outage[0], time.monotonic() + DB_BACK_GRACE_S)
                self.outcome.faults["postgres crash-restart"] += 1
                pg_done = True
            if now >= next_server:
                victim = self.rng.choice(self.servers)
                victim.kill9()
                self.outcome.faults["server kill -9"] += 1
                await asyncio.sleep(self.rng.uniform(*p.server_down_s))
                victim.start()
                await victim.wait_healthy(HEALTHY_TIMEOUT_S)
                next_server = loop.time() + self.rng.uniform(*p.server_kill_every_s)
            if now >= next_worker:
                victim = self.rng.choice(self.workers)
                victim.kill9()
                self.outcome.faults["worker kill -9"] += 1
                await asyncio.sleep(self.rng.uniform(0.1, 2.0))
                victim.start()
                next_worker = loop.time() + self.rng.uniform(*p.worker_kill_every_s)
        phases.traffic_over.set()

    def during_db_outage(self) -> bool:
        """Whether PostgreSQL is down now, or came back less than DB_BACK_GRACE_S ago."""
        since, until = self.db_outage
        return since <= time.monotonic() <= until

    async def monitor(self, stop: asyncio.Event) -> None:
        """Restart any process that died without being killed by the soak, as a supervisor
        would. One that could not start because the database was down (a server exits when it
        cannot reach the database at start) is expected; any other exit is a violation."""
        while not stop.is_set():
            for process in self.processes:
                if not process.check_exit():
                    continue
                exit_text = process.unexpected_exits[-1]
                tail = process.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
                if self.during_db_outage():
                    process.unexpected_exits.pop()
                    self.outcome.faults["exit at start while the database was down"] += 1
                    self.say(f"{exit_text} (the database is down); restarting it")
                else:
                    self.say(f"UNEXPECTED EXIT: {exit_text}; restarting it. Log tail:\n{tail}")
                process.start()
            await asyncio.sleep(0.5)

    async def all_up(self) -> None:
        """Every process running and healthy (the quiet phase starts here)."""
        for process in self.processes:
            if not process.alive:
                process.start()
        for process in self.processes:
            await process.wait_healthy(HEALTHY_TIMEOUT_S)

    # --- drain and checks ---------------------------------------------------------------------

    async def drain(self, store: Store) -> dict[str, int]:
        """Wait until no hold or pending credit is open and no message is pending; the counts
        left when that happened or the drain deadline passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.profile.drain_timeout_s
        while True:
            counts = await open_counts(store)
            if not any(counts.values()) or loop.time() > deadline:
                return counts
            await asyncio.sleep(DRAIN_POLL_S)

    async def run(self) -> Outcome:
        """The whole run; always cleans up."""
        stop_monitor = asyncio.Event()
        try:
            await self.setup()
            phases = Phases(expected=3)
            scenarios = self.scenarios(phases)
            scenario_tasks = [
                asyncio.create_task(run_scenario(s, self.profile.traffic_s + 600))
                for s in scenarios
            ]
            ready = asyncio.create_task(phases.all_ready.wait())
            await asyncio.wait(
                [ready, *scenario_tasks],
                timeout=SETUP_READY_TIMEOUT_S,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not phases.all_ready.is_set():
                ready.cancel()
                phases.traffic_over.set()
                phases.quiet.set()
                reports = await asyncio.gather(*scenario_tasks)
                raise RuntimeError(f"scenario setup failed: {[r.error for r in reports]}")
            self.say(f"players ready ({self.profile.players} per protocol); faults start")
            prober = await self.prober()
            monitor = asyncio.create_task(self.monitor(stop_monitor))
            probe = asyncio.create_task(prober.run(phases.traffic_over))
            await self.chaos(phases)
            self.say("traffic window closed; waiting for every process to be healthy")
            await probe
            stop_monitor.set()
            await monitor
            await self.all_up()
            phases.quiet.set()
            reports = await asyncio.gather(*scenario_tasks)
            await prober.client.aclose()
            self.say("scenarios finished; draining the workers")
            await self.check(reports, prober, scenarios)
            return self.outcome
        finally:
            stop_monitor.set()
            self.cleanup()

    async def check(
        self,
        reports: list[Report],
        prober: Prober,
        scenarios: list[SoakSeamless | SoakHrg | SoakJdb],
    ) -> None:
        """Every end-of-run check; each failure is a violation."""
        o = self.outcome
        for report in reports:
            o.calls += report.wire.requests
            for kind, count in report.wire.faults.items():
                o.faults[f"wire {kind}"] += count
            o.facts[report.protocol] = report.as_json()
            tag = f"{report.protocol} scenario"
            o.violations += [f"{tag}: mismatch {m}" for m in report.mismatches]
            o.violations += [f"{tag}: violation {v}" for v in report.violations]
            if report.unresolved:
                o.violations.append(f"{tag}: {report.unresolved} outcomes never learned")
            if report.error:
                o.violations.append(f"{tag}: {report.error}")
        seamless = next(s for s in scenarios if isinstance(s, SoakSeamless))
        o.facts["seamless_retries_of_100"] = seamless.report.other_error_retries
        o.facts["duplicates_with_a_transient_copy"] = sum(s.transient_dups for s in scenarios)
        o.calls += prober.calls
        store = open_store(self.wallet_url, pool_size=1)
        game_store = open_store(self.game_url, pool_size=1)
        await store.start()
        await game_store.start()
        try:
            left = await self.drain(store)
            self.say(f"drained: {left}")
            for what, count in left.items():
                if count:
                    o.violations.append(f"after the drain: {count} {what}")
            await self.check_prober(store, game_store, prober)
        finally:
            await store.close()
            await game_store.close()
        audit = await asyncio.to_thread(self._cli_result, "audit")
        o.facts["audit"] = audit.strip()
        if "clean" not in audit:
            o.violations.append(f"gamewallet audit: {audit.strip()}")
        for process in self.processes:
            o.violations += process.unexpected_exits
            o.facts.setdefault("restarts", {})[process.name] = process.starts - 1
        o.violations += self.secrets_in_logs()

    def _cli_result(self, *args: str) -> str:
        env = base_env(
            GAMEWALLET_DATABASE_URL=self.wallet_url, GAMEWALLET_SECRET_KEY=self.secrets.installation
        )
        done = subprocess.run(
            gamewallet_argv(*args), env=env, capture_output=True, text=True, check=False
        )
        return done.stdout + done.stderr

    async def check_prober(self, store: Store, game_store: Store, prober: Prober) -> None:
        """Every acknowledged probe is in the database in the state it must be in."""
        o = self.outcome
        clients = await store.run(do(ops.ListClients(protocol="seamless")))
        client = clients[0]
        expected: list[tuple[str, str, OpState | None]]
        expected = [(NS_PAYMENT, tid, None) for tid in prober.payments]
        expected += [(NS_WIRE, tid, OpState.CONFIRMED) for tid in prober.confirmed]
        expected += [(NS_WIRE, tid, OpState.ROLLED_BACK) for tid in prober.abandoned]
        for ns, ext_id, state in expected:
            operation = await store.run(
                do(ops.GetOperation(client_id=client.id, ns=ns, ext_id=ext_id))
            )
            if operation is None:
                o.violations.append(f"acknowledged {ns} {ext_id} is not in the database")
            elif state is not None and operation.state is not state:
                o.violations.append(f"{ns} {ext_id} is {operation.state.value}, not {state.value}")
        for order in prober.payments:
            if await game_store.run(do(ops.GetMeta(PAYMENT_META_PREFIX + order))) is None:
                o.violations.append(f"payment {order}: the game never received its callback")
        player = await store.run(admin.get_player(client, "prober"))
        if prober.lost_track:
            o.violations.append("prober: a call stayed unanswered for a minute")
        elif player.cash.balance.available_minor != prober.balance_minor:
            o.violations.append(
                f"prober balance: wallet {player.cash.balance.available_minor}, "
                f"expected {prober.balance_minor}"
            )
        o.facts["acknowledged"] = {
            "payments": len(prober.payments),
            "confirmed_bets": len(prober.confirmed),
            "abandoned_bets_reconciled": len(prober.abandoned),
        }

    def secrets_in_logs(self) -> list[str]:
        """Any secret of this run (or a session token) found in a process's log."""
        found = []
        needles = [*self.secrets.all(), *self.tokens]
        for log in sorted((self.root / "logs").glob("*.log")):
            text = log.read_text(errors="replace")
            found += [f"a secret appears in {log.name}" for n in needles if n and n in text]
        return found

    def cleanup(self) -> None:
        """Stop every process and the cluster; delete the directory unless asked to keep it."""
        for process in self.processes:
            process.stop()
        listener = getattr(self, "listener", None)
        if listener is not None:
            listener.close()
        if self.keep:
            self.say(f"kept {self.root}")
            return
        self.cluster.destroy()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tails(self) -> str:
        """The end of every process log (printed when the run fails)."""
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-LOG_TAIL_CHARS:]}"
            for log in sorted((self.root / "logs").glob("*.log"))
        )


async def open_counts(store: Store) -> dict[str, int]:
    """Open holds and pending credits, pending and dead messages."""
    _, held = await store.run(do(ops.ListOperations(states=(OpState.HELD,), limit=1)))
    _, pending = await store.run(do(ops.ListOperations(states=(OpState.PENDING,), limit=1)))
    _, queued = await store.run(do(ops.ListOutbox(state="pending", limit=1)))
    _, dead = await store.run(do(ops.ListOutbox(state="dead", limit=1)))
    return {
        "open holds": held,
        "pending credits": pending,
        "undelivered messages": queued,
        "dead letters": dead,
    }


def machine() -> str:
    """What ran the soak (for the report)."""
    cpu = platform.processor() or platform.machine()
    python = sys.version.split()[0]
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, Python {python}"
    )


def summary(profile: Profile, seed: int, outcome: Outcome, duration_s: float) -> dict[str, Any]:
    """The run as one JSON document."""
    return {
        "profile": profile.name,
        "seed": seed,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "durationS": round(duration_s, 1),
        "trafficWindowS": profile.traffic_s,
        "calls": outcome.calls,
        "faults": dict(sorted(outcome.faults.items())),
        "faultsTotal": sum(outcome.faults.values()),
        "violations": len(outcome.violations),
        "violationDetails": outcome.violations[:200],
        "facts": outcome.facts,
    }


def main(profile_name: str, seed: int | None, keep: bool, report_path: Path | None) -> int:
    """Run one soak; print the summary; 0 if no violation."""
    profile = PROFILES[profile_name]
    seed = seed if seed is not None else secrets.randbelow(10**6)
    soak = Soak(profile, seed, keep)
    soak.say(f"profile {profile.name}, seed {seed}, traffic window {profile.traffic_s:g} s")
    started = time.monotonic()
    failure: str | None = None
    try:
        outcome = asyncio.run(soak.run())
    except Exception as exc:  # noqa: BLE001 - any failure of the harness fails the run, loudly
        outcome = soak.outcome
        failure = f"{type(exc).__name__}: {exc}"
        outcome.violations.append(f"the soak could not complete: {failure}")
    result = summary(profile, seed, outcome, time.monotonic() - started)
    text = json.dumps(result, indent=2, sort_keys=True)
    if report_path is not None:
        report_path.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    faults = ", ".join(f"{k} {v}" for k, v in sorted(outcome.faults.items()))
    sys.stdout.write(
        f"\nsoak {profile.name}: calls {outcome.calls}, faults {sum(outcome.faults.values())}"
        f" ({faults}), violations {len(outcome.violations)}\n"
    )
    for violation in outcome.violations[:50]:
        sys.stdout.write(f"  VIOLATION {violation}\n")
    if outcome.violations and soak.keep:
        sys.stdout.write(soak.log_tails() + "\n")
    return 1 if outcome.violations else 0

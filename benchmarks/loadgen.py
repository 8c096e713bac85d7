"""A small, fast HTTP/1.1 load generator for gamewallet's benchmarks (loopback only).

Run as its own process (``python benchmarks/loadgen.py --port … --scenario …``) so that it
never shares an event loop with the server; it prints one JSON document with what it measured.
Each of ``connections`` keep-alive connections sends one request at a time (a closed loop) from
its own *lane*: a list of requests built before the clock starts (so that building them, JDB's
AES included, is not measured), each with what a good answer looks like. The run stops by itself
at ``max_requests`` or after ``duration_s``, whichever comes first, and the target must be a
loopback address. Latency is taken per request with ``perf_counter_ns``.

Responses are parsed just enough to find their end (``Content-Length``); a status other than
200, a protocol error code, or (for replays) bytes other than the original answer all count
as errors, and the first few are kept for the report.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import ipaddress
import json
import math
import os
import socket
import sys
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

#: An expected answer: a byte string every good body contains, or the exact body (replays).
Expect = tuple[str, bytes]
Request = tuple[bytes, Expect]

ERROR_SAMPLES_MAX = 5
SEAMLESS_OK: Expect = ("lacks", b'"errorCode"')
HRG_OK: Expect = ("has", b'"code":"0000"')
JDB_OK: Expect = ("has", b'"status":"0000"')


def check_loopback(host: str) -> None:
    """Refuse any target that is not on this machine's loopback."""
    address = ipaddress.ip_address(socket.gethostbyname(host))
    if not address.is_loopback:
        raise SystemExit(f"refusing to load {host}: benchmarks target loopback only")


def http_post(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A keep-alive HTTP/1.1 POST as bytes."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def basic(user: str, password: str) -> str:
    """An ``Authorization: Basic`` value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- scenarios: lanes of requests ----------------------------------------------------------


@dataclass
class Plan:
    """What to send: ``lane(i)`` yields connection i's requests, in order, without end."""

    lane: Callable[[int], Iterator[Request]]
    #: Requests run (unmeasured) before the lanes, whose answers become replay expectations.
    prime: list[bytes] = field(default_factory=list)


def _seamless(spec: dict[str, Any], port: int) -> Callable[[str, dict[str, Any]], bytes]:
    auth = {"Authorization": basic(spec["user"], spec["password"])}

    def req(endpoint: str, body: dict[str, Any]) -> bytes:
        data = json.dumps(body, separators=(",", ":")).encode()
        return http_post(port, f"/wallet/{endpoint}", data, auth)

    return req


def _amount(currency: str) -> dict[str, Any]:
    return {"amount": 1.5, "currencyCode": currency}


def seamless_pairs(spec: dict[str, Any], port: int, seed: int, *, hot: bool = False) -> Plan:
    """Scenario 1 (and 6 with ``hot``): withdraw + confirmWithdrawal of one id, repeated."""
    import random

    req = _seamless(spec["seamless"], port)
    players, run, cur = spec["players"], spec["run_id"], spec["seamless"]["currency"]

    def lane(i: int) -> Iterator[Request]:
        rng = random.Random(seed * 1000 + i)
        k = 0
        while True:
            player = 1 if hot else rng.randint(1, players)
            token, ext = f"tok-p{player}", f"{run}-{i}-{k}"
            k += 1
            money = _amount(cur)
            yield (
                req("withdraw", {"token": token, "mmTransactionId": ext, "amount": money}),
                SEAMLESS_OK,
            )
            yield (
                req("confirmWithdrawal", {"token": token, "mmTransactionId": ext, "amount": money}),
                SEAMLESS_OK,
            )

    return Plan(lane)


def seamless_rounds(spec: dict[str, Any], port: int, seed: int) -> Plan:
    """Scenario 2: withdraw, confirmWithdrawal, deposit, confirmDeposit for one player."""
    import random

    req = _seamless(spec["seamless"], port)
    players, run, cur = spec["players"], spec["run_id"], spec["seamless"]["currency"]

    def lane(i: int) -> Iterator[Request]:
        rng = random.Random(seed * 1000 + i)
        k = 0
        while True:
            token = f"tok-p{rng.randint(1, players)}"
            bet, win = f"{run}-{i}-{k}-b", f"{run}-{i}-{k}-w"
            k += 1
            money = _amount(cur)
            for endpoint, ext in (
                ("withdraw", bet),
                ("confirmWithdrawal", bet),
                ("deposit", win),
                ("confirmDeposit", win),
            ):
                body = {"token": token, "mmTransactionId": ext, "amount": money}
                yield req(endpoint, body), SEAMLESS_OK

    return Plan(lane)


def seamless_replays(spec: dict[str, Any], port: int, seed: int) -> Plan:
    """Scenario 5: completed withdraw + confirm pairs, then repeats of exactly those calls."""
    import random

    req = _seamless(spec["seamless"], port)
    players, run, cur = spec["players"], spec["run_id"], spec["seamless"]["currency"]
    rng = random.Random(seed)
    prime: list[bytes] = []
    for k in range(spec.get("replay_set", 2000)):
        token, ext = f"tok-p{rng.randint(1, players)}", f"{run}-r{k}"
        body = {"token": token, "mmTransactionId": ext, "amount": _amount(cur)}
        prime += [req("withdraw", body), req("confirmWithdrawal", body)]
    plan = Plan(lambda i: iter(()), prime)

    def lane(i: int) -> Iterator[Request]:
        expected = plan.prime_answers  # type: ignore[attr-defined]  # set after priming
        order = random.Random(seed * 1000 + i)
        while True:
            k = order.randrange(len(prime))
            yield prime[k], ("equals", expected[k])

    plan.lane = lane
    return plan


def hrg_transfers(spec: dict[str, Any], port: int, seed: int) -> Plan:
    """Scenario 3: HRG deposit then withdraw of the same amount, random users."""
    import random

    from gamewallet.protocols.hrg.schemas import xts

    hrg = spec["hrg"]
    auth = basic(hrg["client_id"], hrg["secret"])
    players, run = spec["players"], spec["run_id"]
    stamp = xts(int(time.time() * 1000))  # valid for the server's skew window (300 s)
    headers = {"Authorization": auth, "xts": stamp}

    def lane(i: int) -> Iterator[Request]:
        rng = random.Random(seed * 1000 + i)
        k = 0
        while True:
            user = f"u{rng.randint(1, players)}"
            for name, extra in (("deposit", {}), ("withdraw", {"allWithdraw": False})):
                body = {
                    "agentId": hrg["agent"],
                    "userId": user,
                    "amount": "2.5",
                    "transactionCode": f"{run}{i}x{k}",
                    **extra,
                }
                k += 1
                data = json.dumps(body, separators=(",", ":")).encode()
                yield http_post(port, f"/api/{name}", data, headers), HRG_OK

    return Plan(lane)


def jdb_transfers(spec: dict[str, Any], port: int, seed: int, *, hot: bool = False) -> Plan:
    """Scenario 4 (and 9 with ``hot``: every transfer on player ``j1``): JDB action 19 (AES
    payload), a deposit then a withdraw of the same amount."""
    import random

    from gamewallet.protocols.jdb.crypto import encrypt_payload

    jdb = spec["jdb"]
    players, run = spec["players"], spec["run_id"]
    now_ms = int(time.time() * 1000)  # inside the server's ts window (30 s) for the run

    def lane(i: int) -> Iterator[Request]:
        rng = random.Random(seed * 1000 + i)
        k = 0
        while True:
            uid = "j1" if hot else f"j{rng.randint(1, players)}"
            for amount in (2.5, -2.5):
                payload = {
                    "action": 19,
                    "ts": now_ms,
                    "parent": jdb["parent"],
                    "uid": uid,
                    "serialNo": f"{run}{i}x{k}".replace("-", ""),
                    "amount": amount,
                }
                k += 1
                x = encrypt_payload(json.dumps(payload), jdb["key"], jdb["iv"])
                data = json.dumps({"dc": jdb["dc"], "x": x}).encode()
                yield http_post(port, "/apiRequest.do", data, {}), JDB_OK

    return Plan(lane)


SCENARIOS: dict[str, Callable[[dict[str, Any], int, int], Plan]] = {
    "seamless_pairs": seamless_pairs,
    "seamless_rounds": seamless_rounds,
    "hrg": hrg_transfers,
    "jdb": jdb_transfers,
    "replays": seamless_replays,
    "hot_player": lambda spec, port, seed: seamless_pairs(spec, port, seed, hot=True),
    "jdb_hot_player": lambda spec, port, seed: jdb_transfers(spec, port, seed, hot=True),
}


# --- the closed loop -----------------------------------------------------------------------


@dataclass
class Stats:
    """What one run measured."""

    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0
    transport_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)

    def record_error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < ERROR_SAMPLES_MAX:
            self.error_samples.append(text[:300])


def _good(expect: Expect, status: int, body: bytes) -> bool:
    how, value = expect
    if status != 200:
        return False
    if how == "lacks":
        return value not in body
    if how == "has":
        return value in body
    return body == value


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending its lane's requests one at a time."""

    def __init__(self, runner: _Runner, lane: Iterator[Request]) -> None:
        self.runner = runner
        self.lane = lane
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.expect: Expect = ("has", b"")
        self.sent_ns = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send_next()

    def _send_next(self) -> None:
        assert self.transport is not None
        request = next(self.lane, None) if self.runner.take() else None
        if request is None:  # budget, time or this lane's requests are used up
            self.transport.close()
            return
        raw, self.expect = request
        self.sent_ns = time.perf_counter_ns()
        self.transport.write(raw)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.runner.answered(time.perf_counter_ns() - self.sent_ns, int(head[9:12]), body, self)
        self._send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _Runner:
    """Shared budget and clock of one run."""

    def __init__(self, max_requests: int, duration_s: float, keep_answers: bool) -> None:
        self.left = max_requests
        self.deadline = time.perf_counter_ns() + int(duration_s * 1e9)
        self.stats = Stats()
        self.keep_answers = keep_answers

    def take(self) -> bool:
        if self.left <= 0 or time.perf_counter_ns() >= self.deadline:
            return False
        self.left -= 1
        return True

    def answered(self, latency_ns: int, status: int, body: bytes, conn: _Connection) -> None:
        self.stats.latencies_ns.append(latency_ns)
        if self.keep_answers:
            self.stats.answers.append(body)
        if not _good(conn.expect, status, body):
            self.stats.record_error(f"{status} {body[:200]!r}")


async def run_lanes(
    port: int,
    lanes: list[Iterator[Request]],
    *,
    max_requests: int,
    duration_s: float,
    keep_answers: bool = False,
) -> tuple[Stats, float]:
    """Drive one connection per lane until a limit is reached; (stats, elapsed seconds)."""
    loop = asyncio.get_running_loop()
    runner = _Runner(max_requests, duration_s, keep_answers)
    started = time.perf_counter()
    connections = []
    for lane in lanes:
        _, protocol = await loop.create_connection(
            lambda lane=lane: _Connection(runner, lane), "127.0.0.1", port
        )
        connections.append(protocol)
    try:  # a server that stops answering must not hang the run
        await asyncio.wait_for(asyncio.gather(*(c.done for c in connections)), duration_s + 30)
    except TimeoutError:
        runner.stats.transport_errors += sum(not c.done.done() for c in connections)
        for c in connections:
            if c.transport is not None:
                c.transport.abort()
    elapsed = time.perf_counter() - started
    return runner.stats, elapsed


def percentile_ms(ordered: list[int], q: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return round(ordered[index] / 1e6, 3)


async def main_async(
    args: argparse.Namespace, spec: dict[str, Any]
) -> tuple[dict[str, Any], list[int]]:
    """Prime, warm up, then measure one scenario; the report as a dict, and every measured
    call's latency in ns, in order."""
    # Every run gets its own ids: a repeat of an id would be a replay (or a 109), not new work.
    spec = {**spec, "run_id": f"{spec['run_id']}{time.time_ns() // 1_000_000 % 10**7:07d}"}
    plan = SCENARIOS[args.scenario](spec, args.port, args.seed)
    if plan.prime:
        # One connection, in order: each withdraw's answer before its confirm.
        stats, _ = await run_lanes(
            args.port,
            [iter([(raw, SEAMLESS_OK) for raw in plan.prime])],
            max_requests=len(plan.prime),
            duration_s=600,
            keep_answers=True,
        )
        if stats.errors:
            raise SystemExit(f"priming failed: {stats.error_samples}")
        plan.prime_answers = stats.answers  # type: ignore[attr-defined]
    warm_per_lane = args.warmup_requests // args.connections + 1
    if args.lazy:  # long runs: build each request when it is sent (memory stays flat)
        lanes: list[Iterator[Request]] = [plan.lane(i) for i in range(args.connections)]
        warm = [_take(lane, warm_per_lane) for lane in lanes]
    else:
        per_lane = math.ceil(args.max_requests / args.connections) + warm_per_lane + 4
        built = [list(_take(plan.lane(i), per_lane)) for i in range(args.connections)]
        warm = [iter(lane[:warm_per_lane]) for lane in built]
        lanes = [iter(lane[warm_per_lane:]) for lane in built]
    # The load generator's own collector must not pause it in the middle of the run (a pause
    # here would be counted as the server's latency): what was built is frozen, and young
    # collections are made rare, as the server does (gamewallet.runtime).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    if args.warmup_requests:
        await run_lanes(args.port, warm, max_requests=args.warmup_requests, duration_s=30)
    cpu = CpuWindow(args.server_pid, args.database_cpu, args.database_name)
    cpu.start()
    stats, elapsed = await run_lanes(
        args.port, lanes, max_requests=args.max_requests, duration_s=args.duration
    )
    ordered = sorted(stats.latencies_ns)
    report = {
        **cpu.stop(len(ordered)),
        "scenario": args.scenario,
        "connections": args.connections,
        "requests": len(ordered),
        "seconds": round(elapsed, 3),
        "calls_per_s": round(len(ordered) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": percentile_ms(ordered, 0.50),
        "p95_ms": percentile_ms(ordered, 0.95),
        "p99_ms": percentile_ms(ordered, 0.99),
        "max_ms": percentile_ms(ordered, 1.0),
        "errors": stats.errors,
        "transport_errors": stats.transport_errors,
        "error_samples": stats.error_samples,
    }
    return report, ordered


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (via /proc/<pid>/task/*/children)."""
    found, stack = [], [pid]
    while stack:
        p = stack.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def _postgres_pids(database: str | None = None) -> list[int]:
    """The processes of this machine named ``postgres``: with ``database``, only the server's
    own (checkpointer, WAL writer, background writer, ...) and the backends and autovacuum
    workers of that database, read from their process titles (``postgres: 15/main: user db
    127.0.0.1(port) idle``), so that other databases' sessions on a shared machine are not
    counted; without it, all of them."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() != "postgres":
                    continue
                title = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            if database is None or _counts_for(title, database):
                pids.append(int(entry.name))
    return pids


def _counts_for(title: str, database: str) -> bool:
    """Whether a postgres process title belongs to the server or to ``database``."""
    words = title.split()
    if "autovacuum" in words and "worker" in words:
        return words[-1] == database
    is_session = any("(" in w or w == "[local]" for w in words)
    if not is_session:
        return True  # the postmaster and the server's background processes
    return database in words


def _cpu_ticks(pids: list[int]) -> dict[int, int]:
    """User + system CPU ticks of each process (those that exit in between are skipped)."""
    ticks = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks[pid] = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks


class CpuWindow:
    """CPU seconds spent by the server's process tree, PostgreSQL's processes (optional) and
    this load generator between :meth:`start` and :meth:`stop`: per call, they say where the
    machine's time went, which a throughput figure on a shared machine cannot."""

    HZ = os.sysconf("SC_CLK_TCK")

    def __init__(self, server_pid: int | None, database: bool, database_name: str | None) -> None:
        self.server_pid, self.database, self.database_name = server_pid, database, database_name

    def _read(self) -> tuple[dict[int, int], dict[int, int], float]:
        server = _cpu_ticks(_tree(self.server_pid)) if self.server_pid else {}
        db = _cpu_ticks(_postgres_pids(self.database_name)) if self.database else {}
        return server, db, time.process_time()

    def start(self) -> None:
        self._before = self._read()

    def stop(self, calls: int) -> dict[str, float | None]:
        after = self._read()

        def spent(before: dict[int, int], now: dict[int, int]) -> float:
            return sum(t - before.get(p, 0) for p, t in now.items()) / self.HZ

        server = spent(self._before[0], after[0])
        db = spent(self._before[1], after[1])
        per_call = 1000.0 / calls if calls else 0.0
        return {
            "server_cpu_ms_per_call": round(server * per_call, 4) if self.server_pid else None,
            "db_cpu_ms_per_call": round(db * per_call, 4) if self.database else None,
            "loadgen_cpu_ms_per_call": round((after[2] - self._before[2]) * per_call, 4),
        }


def _take(it: Iterator[Request], n: int) -> Iterator[Request]:
    for _ in range(n):
        yield next(it)


def main(argv: list[str] | None = None) -> int:
    """Command line: one scenario against 127.0.0.1:PORT; JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--spec", required=True, help="JSON file: players, credentials, run id")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds, at most")
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--warmup-requests", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lazy", action="store_true", help="build requests as they are sent")
    parser.add_argument("--latencies-out", help="write every latency (ns, int64) to this file")
    parser.add_argument("--server-pid", type=int, help="count this process tree's CPU time")
    parser.add_argument(
        "--database-cpu", action="store_true", help="count the CPU time of postgres processes"
    )
    parser.add_argument(
        "--database-name",
        help="with --database-cpu: count only the server's own processes and this database's",
    )
    args = parser.parse_args(argv)
    check_loopback("127.0.0.1")
    if not 1 <= args.connections <= 1024 or args.duration > 3600 or args.max_requests < 1:
        raise SystemExit("connections 1..1024, duration <= 3600 s, max-requests >= 1")
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - the dev lock has it
        pass
    spec = json.loads(Path(args.spec).read_text())
    report, ordered = asyncio.run(main_async(args, spec))
    if args.latencies_out:  # every call's latency (ns, int64), for pooling several slices
        Path(args.latencies_out).write_bytes(array("q", ordered).tobytes())
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

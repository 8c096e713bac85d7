"""End to end: ``gamewallet simulate`` as a process against ``gamewallet serve``'s app as a process.

The database (SQLite file, or a fresh PostgreSQL database) is migrated and seeded with the demo
data by the ``gamewallet`` command itself, the server runs under uvicorn on 127.0.0.1, and the
simulator plays every protocol with every fault over real loopback HTTP, as in the README demo.
Each run must report zero mismatches and exit 0; afterwards ``gamewallet audit`` must be clean.
Everything is bounded: the server start, each command, and the simulator's own deadline.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gamewallet import demo

START_TIMEOUT_S = 30
COMMAND_TIMEOUT_S = 240
STOP_TIMEOUT_S = 10

CREDENTIALS: dict[str, list[str]] = {
    "seamless": ["--username", demo.SEAMLESS["username"], "--password", demo.SEAMLESS["password"]],
    "hrg": [
        *("--client-id", demo.HRG["client_id"], "--client-secret", demo.HRG["secret"]),
        *("--agent", demo.HRG["agent"]),
    ],
    "jdb": [
        *("--dc", demo.JDB["dc"], "--parent", demo.JDB["parent"]),
        *("--key", demo.JDB["key"], "--iv", demo.JDB["iv"]),
    ],
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gamewallet(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``gamewallet`` command in a process of its own (bounded)."""
    env = {**os.environ, "GAMEWALLET_DATABASE_URL": db_url, "GAMEWALLET_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "gamewallet.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database migrated and seeded with the demo data by the command itself."""
    url: str = (
        f"sqlite:///{tmp_path}/e2e.db"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    for step in (["db", "upgrade"], ["demo"]):
        done = gamewallet(url, *step)
        assert done.returncode == 0, done.stdout + done.stderr
    return url


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[str]:
    """The base URL of the app served by uvicorn on ``db_url``; stopped afterwards."""
    port = _free_port()
    env = {**os.environ, "GAMEWALLET_DATABASE_URL": db_url, "GAMEWALLET_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "uvicorn", "gamewallet.app:app_factory", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited: {log_path.read_text(errors='replace')}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not start: {log_path.read_text(errors='replace')}")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


def simulate(db_url: str, base: str, protocol: str, *extra: str) -> tuple[int, dict[str, Any]]:
    """Run the simulator process; its exit status and JSON report."""
    args = ["simulate", "--protocol", protocol, "--url", base, *CREDENTIALS[protocol]]
    args += ["--deadline-s", "180", "--timeout-s", "10", "--json", *extra]
    done = gamewallet(db_url, *args)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    report: dict[str, Any] = json.loads(lines[-1])
    return done.returncode, report


def test_every_protocol_under_every_fault_matches_the_model(db_url: str, server: str) -> None:
    faults = ["--faults", "drop,dup,timeout,reorder", "--fault-rate", "0.25", "--seed", "2026"]
    size = ["--players", "6", "--rounds", "25", "--concurrency", "3"]
    setup = {"seamless": ["--setup-db", db_url], "hrg": [], "jdb": []}
    for protocol in ("seamless", "hrg", "jdb"):
        status, report = simulate(db_url, server, protocol, *faults, *size, *setup[protocol])
        assert (status, report["error"]) == (0, None), report
        assert report["mismatches"] == 0, report["mismatchDetails"]
        assert report["violations"] == 0, report["violationDetails"]
        assert report["unresolved"] == 0
        assert report["operations"] == 6 * 25
        assert sum(report["faults"].values()) > 0, report
        assert report["calls"] > report["operations"]
    audit = gamewallet(db_url, "--json", "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert json.loads(audit.stdout.strip().splitlines()[-1]) == {"ok": True, "violations": []}


def test_the_readme_demo_runs_clean(db_url: str, server: str) -> None:
    # Exactly the README's HRG command (no faults), then its JDB and seamless equivalents.
    for protocol, extra in (("hrg", []), ("jdb", []), ("seamless", ["--setup-db", db_url])):
        status, report = simulate(
            db_url, server, protocol, "--players", "5", "--rounds", "20", *extra
        )
        assert status == 0, report
        assert report["ok"] is True
        assert report["faults"] == {}


def test_a_run_that_cannot_start_exits_2(db_url: str, server: str) -> None:
    args = ["--client-id", demo.HRG["client_id"], "--client-secret", "wrong", "--agent", "hrgag"]
    done = gamewallet(db_url, "simulate", "--protocol", "hrg", "--url", server, *args, "--json")
    assert done.returncode == 2
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ok"] is False
    assert "1001" in report["error"]
    bad = gamewallet(db_url, "simulate", "--protocol", "hrg", "--url", server, "--faults", "boom")
    assert bad.returncode == 2  # a usage error
    assert "faults are a comma list" in bad.stderr

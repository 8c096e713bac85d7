"""The benchmark says when the host reclaims idle page cache (which undoes scenario 7's warm-up)
and how much of the big file was cached when the load started and ended; scenario 7 in slices
beside scenario 1 is pooled and judged against the scenario 1 of the same minutes."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _bench() -> Any:
    """benchmarks/bench.py (a directory of scripts: its sibling ``seed`` is imported by path)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("gamewallet_bench", BENCHMARKS / "bench.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


bench = _bench()


def _damon(root: Path, *, state: str, action: str, aggr_us: int, min_age: int) -> None:
    """A DAMON sysfs tree as the kernel lays it out (only the files the harness reads)."""
    kdamond = root / "kdamonds" / "0"
    context = kdamond / "contexts" / "0"
    scheme = context / "schemes" / "0"
    for d in (context / "monitoring_attrs" / "intervals", scheme / "access_pattern" / "age"):
        d.mkdir(parents=True)
    (kdamond / "state").write_text(state + "\n")
    (context / "monitoring_attrs" / "intervals" / "aggr_us").write_text(f"{aggr_us}\n")
    (scheme / "action").write_text(action + "\n")
    (scheme / "access_pattern" / "age" / "min").write_text(f"{min_age}\n")


def test_a_running_pageout_scheme_is_reported_with_its_idle_age(tmp_path: Path) -> None:
    _damon(tmp_path, state="on", action="pageout", aggr_us=5_000_000, min_age=6)
    assert bench.proactive_reclaim(tmp_path) == "DAMON pageout of memory idle >= 30 s"


@pytest.mark.parametrize(("state", "action"), [("off", "pageout"), ("on", "stat")])
def test_a_stopped_monitor_or_another_action_is_not_reclaim(
    tmp_path: Path, state: str, action: str
) -> None:
    _damon(tmp_path, state=state, action=action, aggr_us=5_000_000, min_age=6)
    assert bench.proactive_reclaim(tmp_path) is None


def test_no_damon_at_all_is_no_reclaim(tmp_path: Path) -> None:
    assert bench.proactive_reclaim(tmp_path / "absent") is None


@pytest.mark.skipif(shutil.which("fincore") is None, reason="util-linux fincore not installed")
def test_a_file_just_written_is_counted_in_the_page_cache(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"x" * (1 << 20))  # written through the page cache, so resident now
    share = bench.cached_share(path)
    assert share is not None
    assert 0.5 <= share <= 1.0


@pytest.mark.skipif(shutil.which("fincore") is None, reason="util-linux fincore not installed")
def test_a_directory_counts_all_its_files(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(b"x" * (1 << 19))
    share = bench.cached_share(tmp_path)
    assert share is not None
    assert 0.5 <= share <= 1.0
    assert bench.cached_share(tmp_path / "empty-dir-that-is-absent") is None


def test_the_share_is_unknown_without_fincore_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bench.cached_share(tmp_path / "absent") is None
    path = tmp_path / "data"
    path.write_bytes(b"x" * 4096)
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    assert bench.cached_share(path) is None


def test_the_summary_names_the_reclaim_and_the_cached_share() -> None:
    report = {
        "calls_per_s": 2000.0,
        "p50_ms": 20.0,
        "p95_ms": 40.0,
        "p99_ms": 60.0,
        "errors": 0,
        "transport_errors": 0,
        "server_rss_mib": 300.0,
        "file_in_page_cache": {"after_warm_up": 1.0, "load_start": 0.42, "load_end": None},
    }
    results = {
        "date": "2026-11-22T00:00:00Z",
        "connections": 64,
        "duration_s": 10,
        "machine": {
            "cpu": "cpu",
            "cores": 2,
            "ram_gib": 23.5,
            "postgresql": "15",
            "python": "3.11",
            "proactive_reclaim": "DAMON pageout of memory idle >= 30 s",
        },
        "databases": {"sqlite": {"scenarios": {"7": report}}},
    }
    text = bench.summary_markdown(results)
    assert "Proactive reclaim: DAMON pageout of memory idle >= 30 s." in text
    assert (
        "the database's files in the page cache: after warm up 100%, load start 42%, load end ?"
        in text
    )


def _slice(calls_per_s: float, seconds: float, p99: float, server_cpu: float) -> dict[str, Any]:
    return {
        "requests": round(calls_per_s * seconds),
        "seconds": seconds,
        "calls_per_s": calls_per_s,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "errors": 1,
        "transport_errors": 0,
        "server_rss_mib": 300.0,
        "load_avg_1m_after": 1.5,
        "server_cpu_ms_per_call": server_cpu,
        "db_cpu_ms_per_call": None,
        "loadgen_cpu_ms_per_call": 0.03,
    }


def test_slices_pool_into_one_report_over_all_their_calls() -> None:
    # 1,000 calls at 1-1000 us in the first slice, 3,000 at 1,001-4,000 us in the second.
    first, second = _slice(100.0, 10.0, 1.0, 0.2), _slice(300.0, 10.0, 4.0, 0.4)
    ordered = [us * 1000 for us in range(1, 4001)]
    pooled = bench.pool([first, second], ordered)
    assert pooled["requests"] == 4000
    assert pooled["calls_per_s"] == 200.0  # 4,000 calls over 20 s, not the mean of the two
    assert pooled["p50_ms"] == 2.0
    assert pooled["p99_ms"] == 3.96
    assert pooled["max_ms"] == 4.0
    assert pooled["errors"] == 2
    assert pooled["server_cpu_ms_per_call"] == 0.35  # weighted by calls: (0.2 + 3 x 0.4) / 4
    assert "db_cpu_ms_per_call" not in pooled  # not measured in a slice: not made up
    assert [s["p99_ms"] for s in pooled["slices"]] == [1.0, 4.0]


def _targets_line(section: dict[str, Any]) -> str:
    text = bench.targets_markdown({"databases": {"sqlite": section}})
    return str(next(line for line in text.splitlines() if line.startswith("| scenario 7")))


def test_scenario_7_is_judged_against_scenario_1_of_the_same_minutes() -> None:
    early = {"calls_per_s": 5000.0, "p99_ms": 20.0}  # the yardstick run before the big one
    beside = {"calls_per_s": 4000.0, "p99_ms": 30.0}  # scenario 1 in slices beside scenario 7
    big = {
        "calls_per_s": 3600.0,
        "p99_ms": 36.0,
        "pairs": [
            {"throughput_vs_scenario_1": 0.85, "p99_vs_scenario_1": 1.3},
            {"throughput_vs_scenario_1": 0.95, "p99_vs_scenario_1": 1.1},
        ],
    }
    line = _targets_line({"scenarios": {"1": early, "7": big}, "big_yardstick": beside})
    assert "90% of scenario 1's throughput, p99 1.20x" in line
    assert "pairs: 85%/1.30x, 95%/1.10x" in line
    assert line.endswith("| yes |")
    # Without slices the yardstick is the earlier run of scenario 1: here 72 %, 1.80x.
    line = _targets_line({"scenarios": {"1": early, "7": big}})
    assert "72% of scenario 1's throughput, p99 1.80x" in line
    assert line.endswith("| no |")

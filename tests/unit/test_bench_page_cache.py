"""The benchmark says when the host reclaims idle page cache (which undoes scenario 7's warm-up)
and how much of the big file was cached when the load started and ended."""

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

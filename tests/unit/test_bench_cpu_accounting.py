"""The benchmark's database CPU counts the server's own processes and the benchmark database's
sessions, never another database's (the machine is shared)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest


def _loadgen() -> Any:
    """benchmarks/loadgen.py (a directory of scripts, not a package)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "loadgen.py"
    spec = importlib.util.spec_from_file_location("gamewallet_bench_loadgen", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


loadgen = _loadgen()


@pytest.mark.parametrize(
    ("title", "counted"),
    [
        ("/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main", True),
        ("postgres: 15/main: checkpointer", True),
        ("postgres: 15/main: walwriter", True),
        ("postgres: 15/main: background writer", True),
        ("postgres: 15/main: postgres gw_bench 127.0.0.1(50432) idle", True),
        ("postgres: 15/main: postgres gw_bench [local] SELECT", True),
        ("postgres: 15/main: autovacuum worker gw_bench", True),
        ("postgres: 15/main: postgres gw_other 127.0.0.1(50432) idle", False),
        ("postgres: 15/main: app gw_bench_big 127.0.0.1(50432) idle in transaction", False),
        ("postgres: 15/main: autovacuum worker gw_other", False),
    ],
)
def test_a_process_counts_when_it_is_the_servers_or_the_databases(
    title: str, counted: bool
) -> None:
    assert loadgen._counts_for(title, "gw_bench") is counted

"""``gamewallet serve`` tunes its garbage collector: thresholds set, start-up objects frozen,
collections and pauses on /metrics; the settings turn both off; a bad value stops the start."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
from tests.security.world import LiveServer


def _gauge(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not on /metrics"
    return float(match.group(1))


def test_the_server_freezes_its_start_up_objects_and_reports_its_collections(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"
    with LiveServer(url, tmp_path / "server.log", serve=True, log_level="WARNING") as server:
        for _ in range(50):  # some work first
            assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
    # The app, its routes, the modules: tens of thousands of objects, none scanned again.
    assert _gauge(text, "gamewallet_gc_frozen_objects") > 20_000
    assert 'gamewallet_gc_collections_total{generation="2"}' in text
    assert _gauge(text, 'gamewallet_gc_threshold\\{generation="0"\\}') == 50_000
    # The start-up collection before the freeze is not a pause any request waited for, and
    # with these thresholds a short run makes no full collection at all.
    assert _gauge(text, 'gamewallet_gc_pause_max_seconds\\{generation="2"\\}') == 0


def test_the_settings_turn_the_freeze_and_the_thresholds_off(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"
    with LiveServer(
        url, tmp_path / "server.log", serve=True, gc_freeze=0, gc_threshold="python"
    ) as server:
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert _gauge(text, "gamewallet_gc_frozen_objects") == 0
    assert _gauge(text, 'gamewallet_gc_threshold\\{generation="0"\\}') == 700


def test_a_bad_threshold_stops_the_server_before_it_serves(tmp_path: Path) -> None:
    env = {
        "GAMEWALLET_DATABASE_URL": f"sqlite:///{tmp_path}/gw.db",
        "GAMEWALLET_GC_THRESHOLD": "0,0,0",
        "PATH": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", "from gamewallet.app import app_factory; app_factory()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "GAMEWALLET_GC_THRESHOLD: gen0 must be in (700, 1000000)" in done.stderr

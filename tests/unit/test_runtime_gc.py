"""The server process's garbage collector settings (gamewallet.runtime) and their metrics."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gamewallet import runtime
from gamewallet.observability import Metrics
from gamewallet.runtime import DEFAULT_GC_THRESHOLD, parse_gc_threshold, tune_gc
from gamewallet.settings import Settings


@pytest.fixture
def thresholds() -> Iterator[None]:
    """Whatever a test sets, the test process gets its own thresholds back."""
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, DEFAULT_GC_THRESHOLD),
        ("", DEFAULT_GC_THRESHOLD),
        ("  ", DEFAULT_GC_THRESHOLD),
        ("python", None),
        ("Python", None),
        ("700,10,10", (700, 10, 10)),
        (" 100000 , 50 , 1000 ", (100_000, 50, 1000)),
    ],
)
def test_thresholds_are_read(text: str | None, expected: tuple[int, int, int] | None) -> None:
    assert parse_gc_threshold(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "0,10,10",
        "699,10,10",
        "2000000,10,10",
        "50000,0,10",
        "50000,10,0",
        "50000,10",
        "50000,10,10,10",
        "a,b,c",
        "-1,10,10",
        "50000;20;100",
        "off",
    ],
)
def test_a_threshold_that_would_disable_or_starve_the_collector_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="GAMEWALLET_GC_THRESHOLD"):
        parse_gc_threshold(text)


def test_settings_carry_the_collector_configuration() -> None:
    assert Settings.from_env({}).gc_threshold == DEFAULT_GC_THRESHOLD
    assert Settings.from_env({}).gc_freeze is True
    tuned = Settings.from_env({"GAMEWALLET_GC_THRESHOLD": "python", "GAMEWALLET_GC_FREEZE": "0"})
    assert tuned.gc_threshold is None
    assert tuned.gc_freeze is False
    with pytest.raises(ValueError, match="GAMEWALLET_GC_THRESHOLD"):
        Settings.from_env({"GAMEWALLET_GC_THRESHOLD": "0,0,0"})


@pytest.mark.usefixtures("thresholds")
def test_tuning_sets_the_thresholds_and_records_every_collection_once() -> None:
    pauses = tune_gc((12_345, 7, 9))
    assert gc.get_threshold() == (12_345, 7, 9)
    assert tune_gc(None) is pauses  # installed once per process, thresholds kept
    assert gc.get_threshold() == (12_345, 7, 9)
    assert gc.callbacks.count(pauses.callback) == 1
    before = list(pauses.collections), list(pauses.seconds)
    gc.collect(0)
    gc.collect(2)
    assert pauses.collections[0] == before[0][0] + 1
    assert pauses.collections[2] == before[0][2] + 1
    assert pauses.seconds[2] > before[1][2]
    assert pauses.max_seconds[2] > 0


@pytest.mark.usefixtures("thresholds")
def test_metrics_show_the_collections_pauses_and_frozen_objects() -> None:
    pauses = tune_gc(None)
    gc.collect(1)
    text = Metrics().render().decode()
    assert (
        f'gamewallet_gc_collections_total{{generation="1"}} {float(pauses.collections[1])}' in text
    )
    assert 'gamewallet_gc_pause_seconds_total{generation="2"}' in text
    assert 'gamewallet_gc_pause_max_seconds{generation="0"}' in text
    assert f"gamewallet_gc_frozen_objects {float(gc.get_freeze_count())}" in text


def test_without_the_record_metrics_have_no_collector_families(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "PAUSES", None)
    assert "gamewallet_gc_" not in Metrics().render().decode()


@pytest.mark.usefixtures("thresholds")
def test_the_freeze_collects_once_unrecorded_and_freezes_what_is_alive() -> None:
    pauses = tune_gc(None)
    before = list(pauses.collections)
    try:
        frozen = runtime.freeze_after_startup()
        assert frozen == gc.get_freeze_count() > 1000
        assert pauses.collections == before  # the start-up collection is not a pause
        assert not pauses.paused
        gc.collect(0)
        assert pauses.collections[0] == before[0] + 1  # recording goes on
    finally:
        gc.unfreeze()

"""The garbage collector of a server process: its thresholds, a freeze after start-up, and
a record of its pauses for ``/metrics``.

CPython frees almost every object by reference counting; the cyclic collector only exists
for reference cycles. With its default thresholds (700, 10, 10) it still runs a full
collection every time the objects that survived the younger generations reach a quarter of
the old ones, and a server under load keeps promoting objects that are merely in flight (a
request's body, its future, its answer) when a young collection happens to find them alive.
Measured on scenario 1 of the benchmark (SQLite, 64 connections, ~3,000 calls/s): a full
collection every 1.5 s, each holding the event loop and the SQLite writer for 70-95 ms,
which put the 99th percentile at ~90-110 ms while the median was ~20 ms.

So ``gamewallet serve`` does two things in each server process:

- it raises the thresholds (default 50,000 / 20 / 100, ``GAMEWALLET_GC_THRESHOLD``): a young
  collection then finds most in-flight objects already freed, fewer survive, and full
  collections become rare;
- once the app has started (store open, caches loaded), it collects once and **freezes** what
  is alive (``gc.freeze()``): the modules, the app, the routes and the caches of start-up,
  ~135,000 objects, are never scanned again. Frozen objects are still freed by reference
  counting; only a cycle among them would stay (they are long-lived by nature).

Both keep every object that is garbage collectable; what changes is how often and how much
the collector scans. ``GAMEWALLET_GC_THRESHOLD=python`` keeps CPython's thresholds and
``GAMEWALLET_GC_FREEZE=0`` skips the freeze. Tests and embedded apps (``create_app``) are
left alone: only the server process tunes its collector.

:data:`PAUSES` records every collection's generation and duration once
:func:`tune_gc` has run; ``/metrics`` shows them (this process's, also in multiprocess mode:
prometheus-client's files hold no custom families). The callback only adds to plain numbers:
it runs inside whatever code triggered the collection, so it must take no lock.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Any

#: The thresholds ``gamewallet serve`` sets (CPython's are 700, 10, 10).
DEFAULT_GC_THRESHOLD = (50_000, 20, 100)
#: Bounds of a configured threshold: a first threshold below CPython's default or zero (which
#: disables the collector, leaving cycles to pile up) is refused.
GEN0_RANGE = (700, 1_000_000)
OLDER_RANGE = (1, 10_000)


def parse_gc_threshold(text: str | None) -> tuple[int, int, int] | None:
    """``GAMEWALLET_GC_THRESHOLD``: three integers ``gen0,gen1,gen2``, unset/empty for the
    default, ``python`` for CPython's own (``None``). Anything else is a ``ValueError``."""
    if text is None or not text.strip():
        return DEFAULT_GC_THRESHOLD
    if text.strip().lower() == "python":
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(
            f"GAMEWALLET_GC_THRESHOLD must be three integers gen0,gen1,gen2 or 'python': {text!r}"
        )
    gen0, gen1, gen2 = (int(p) for p in parts)
    if not GEN0_RANGE[0] <= gen0 <= GEN0_RANGE[1]:
        raise ValueError(f"GAMEWALLET_GC_THRESHOLD: gen0 must be in {GEN0_RANGE}: {gen0}")
    for value in (gen1, gen2):
        if not OLDER_RANGE[0] <= value <= OLDER_RANGE[1]:
            raise ValueError(f"GAMEWALLET_GC_THRESHOLD: gen1/gen2 must be in {OLDER_RANGE}")
    return gen0, gen1, gen2


@dataclass
class GcPauses:
    """Collections and their pauses per generation (0, 1, 2) since :func:`tune_gc`."""

    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    max_seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    #: Set while the start-up collection runs: it is not a pause any request waits for.
    paused: bool = False
    _started: float = 0.0

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        """``gc.callbacks`` entry: plain arithmetic only (no lock, no allocation to speak of)."""
        if self.paused:
            return
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = int(info["generation"])
        pause = time.perf_counter() - self._started
        self.collections[generation] += 1
        self.seconds[generation] += pause
        if pause > self.max_seconds[generation]:
            self.max_seconds[generation] = pause


#: This process's record, once :func:`tune_gc` has installed it.
PAUSES: GcPauses | None = None


def tune_gc(threshold: tuple[int, int, int] | None) -> GcPauses:
    """Set the collector's thresholds (``None`` keeps them) and start recording its pauses
    (once per process); the record."""
    global PAUSES
    if threshold is not None:
        gc.set_threshold(*threshold)
    if PAUSES is None:
        PAUSES = GcPauses()
        gc.callbacks.append(PAUSES.callback)
    return PAUSES


def freeze_after_startup() -> int:
    """Collect once, then move every object alive now out of the collector's sight; how many
    objects are frozen. That collection, before the first request, is not recorded."""
    if PAUSES is not None:
        PAUSES.paused = True
    try:
        gc.collect()
    finally:
        if PAUSES is not None:
            PAUSES.paused = False
    gc.freeze()
    return gc.get_freeze_count()

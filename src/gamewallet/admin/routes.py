"""Everything the back-office adds to the app: the admin API, the admin pages, and the
operators' ``/metrics`` endpoint (Prometheus text format).

``/metrics`` carries the request metrics of :mod:`gamewallet.observability` plus gauges
read from the database at scrape time (outbox depth, open holds and pending credits and the
age of the oldest, the database being up) and the answering process's connection pool. The
database figures are reused for ``admin_cache_s`` so frequent scrapes cost little; when the
database is down the scrape still answers, with ``gamewallet_db_up 0``. It needs no sign-in
(it holds no secrets nor player data): expose it only to the monitoring network.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from litestar import Response, Router, get
from litestar.handlers import HTTPRouteHandler
from prometheus_client.metrics_core import Metric

from gamewallet.admin.actions import Backoffice
from gamewallet.admin.api import build_api
from gamewallet.admin.pages import build_pages
from gamewallet.core.money import SCALE
from gamewallet.observability import CONTENT_TYPE_LATEST, Metrics, counter_family, gauge_family
from gamewallet.service import backoffice
from gamewallet.service.context import Services
from gamewallet.store.port import StoreError


def build_admin(services: Services, metrics: Metrics) -> list[Router | HTTPRouteHandler]:
    """The admin API router, the pages router and the /metrics handler."""
    office = Backoffice(services)
    return [build_api(office), build_pages(office), metrics_handler(services, metrics)]


def metrics_handler(services: Services, metrics: Metrics) -> HTTPRouteHandler:
    """``GET /metrics``."""
    cache: dict[str, Any] = {"at": -1e9, "families": []}

    async def database_families() -> list[Metric]:
        now = time.monotonic()
        if now - cache["at"] < services.settings.admin_cache_s:
            families: list[Metric] = cache["families"]
            return families
        try:
            current = await services.store.run(backoffice.gauges())
        except (StoreError, OSError):
            families = [gauge_family("gamewallet_db_up", "1 if the database answered.", {(): 0})]
        else:
            families = _gauges(current, services.clock.now_ms())
        cache.update(at=now, families=families)
        return families

    @get("/metrics", include_in_schema=False, media_type=CONTENT_TYPE_LATEST)
    async def metrics_endpoint() -> Response[bytes]:
        families = [
            *await database_families(),
            *_pool_families(services),
            *_commit_families(services),
        ]
        return Response(
            metrics.render(families),
            media_type=CONTENT_TYPE_LATEST,
            headers={"Cache-Control": "no-store"},
        )

    return metrics_endpoint


def _gauges(current: backoffice.Gauges, now_ms: int) -> list[Metric]:
    counts: dict[tuple[str, ...], float] = defaultdict(float)
    amounts: dict[tuple[str, ...], float] = defaultdict(float)
    oldest: dict[tuple[str, ...], float] = {}
    for total in current.open_totals:
        key = (total.state, total.currency)
        counts[key] += total.count
        # A monitoring figure, not money: a float of currency units is what Prometheus holds.
        amounts[key] += total.amount_minor / 10**SCALE
        age_s = max(0.0, (now_ms - total.oldest_ms) / 1000)
        oldest[(total.state,)] = max(oldest.get((total.state,), 0.0), age_s)
    labels = ("state", "currency")
    return [
        gauge_family("gamewallet_db_up", "1 if the database answered.", {(): 1}),
        gauge_family(
            "gamewallet_outbox_messages",
            "Outbox messages waiting for delivery (pending) or given up (dead).",
            {(state,): float(n) for state, n in current.outbox_depth.items()},
            ("state",),
        ),
        gauge_family(
            "gamewallet_open_operations",
            "Outstanding holds (state held) and pending credits (state pending).",
            counts,
            labels,
        ),
        gauge_family(
            "gamewallet_open_operations_amount",
            "Sum of the outstanding holds and pending credits, in currency units.",
            amounts,
            labels,
        ),
        gauge_family(
            "gamewallet_oldest_open_operation_age_seconds",
            "Age of the oldest hold or pending credit.",
            oldest,
            ("state",),
        ),
    ]


def _pool_families(services: Services) -> list[Metric]:
    stats = getattr(services.store, "pool_stats", None)
    if stats is None:
        return []
    values: dict[str, int] = stats()
    return [
        gauge_family(
            "gamewallet_db_pool",
            "This process's database connections: max, open, in_use (queued: SQLite jobs"
            " waiting for the writer thread).",
            {(name,): float(v) for name, v in values.items()},
            ("stat",),
        )
    ]


def _commit_families(services: Services) -> list[Metric]:
    stats = getattr(services.store, "commit_stats", None)
    if stats is None:
        return []
    values: dict[str, int] = stats()
    described = (
        (
            "gamewallet_db_group_commits",
            "batches",
            "This process's group-commit transactions (SQLite writer batches, PostgreSQL batches).",
        ),
        (
            "gamewallet_db_group_commit_calls",
            "batched_calls",
            "Wallet calls those transactions carried (per transaction: the mean batch size).",
        ),
        (
            "gamewallet_db_single_calls",
            "single_calls",
            "PostgreSQL fast-path calls this process sent on their own statement.",
        ),
    )
    families: list[Metric] = [
        counter_family(name, documentation, {(): float(values[key])})
        for name, key, documentation in described
        if key in values
    ]
    if "write_turn_wait_us" in values:
        families.append(
            counter_family(
                "gamewallet_sqlite_write_turn_wait_seconds",
                "Time this process's SQLite writer waited for its write turn, while another"
                " process (or store) wrote the same database file.",
                {(): values["write_turn_wait_us"] / 1_000_000},
            )
        )
    if "flush_before_restart_us" in values:
        families.append(
            counter_family(
                "gamewallet_sqlite_wal_flush_seconds",
                "Time this process's WAL checkpointer spent writing the database file out to disk"
                " before a restart, outside the write turn.",
                {(): values["flush_before_restart_us"] / 1_000_000},
            )
        )
    modes = {(key[4:].upper(),): float(n) for key, n in values.items() if key.startswith("wal_")}
    if modes:
        families.append(
            counter_family(
                "gamewallet_sqlite_wal_checkpoints",
                "This process's WAL checkpoints by mode (PASSIVE by the checkpointer thread,"
                " RESTART by the writer, TRUNCATE when idle).",
                dict(sorted(modes.items())),
                ("mode",),
            )
        )
    return families

"""One typed settings object for the whole process, read from the environment once.

Every limit gamewallet enforces is a named setting here (architecture rule: "a limit on
everything"). Nothing reads the environment anywhere else.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from gamewallet.runtime import DEFAULT_GC_THRESHOLD, parse_gc_threshold

DEFAULT_DATABASE_URL = "sqlite:///./gamewallet.db"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    return default if raw in (None, "") else int(raw)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return default if raw in (None, "") else float(raw)


def _networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(
        ipaddress.ip_network(p.strip(), strict=False) for p in text.split(",") if p.strip()
    )


@dataclass(frozen=True)
class Settings:
    """Process settings; see the configuration reference in README.md."""

    database_url: str = DEFAULT_DATABASE_URL
    #: PostgreSQL pool size per server process (sized to the cores, not to the load).
    db_pool_size: int = 4
    #: PostgreSQL fast path: most concurrent wallet calls sent as one transaction (group
    #: commit); 1 sends every call on its own.
    pg_batch_max: int = 32
    #: SQLite ``PRAGMA synchronous``: FULL (durable on power loss) or NORMAL.
    sqlite_synchronous: str = "FULL"
    #: SQLite fast path: the hot wallet calls run as plain functions on the writer thread
    #: (store/sqlite_fastpath.py) instead of their generic use cases; 0 turns it off.
    sqlite_fast_path: bool = True
    #: Largest request body read, in bytes; larger ones get 413 with the protocol's error.
    max_body_bytes: int = 64 * 1024
    #: Largest request head (request line + headers) a connection may send, in bytes; past it
    #: the server answers 431 and closes (gamewallet.httpserver; httptools has no limit).
    max_header_bytes: int = 32 * 1024
    #: How long identical repeats return the stored original response (seamless 1.4).
    idempotency_retention_s: int = 7 * 24 * 3600
    #: Addresses whose X-Forwarded-For is believed (CIDRs).
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default_factory=tuple
    )
    #: Default life of a seamless session token.
    session_ttl_s: int = 4 * 3600
    #: HRG: largest accepted distance between the ``xts`` header and our clock.
    hrg_xts_skew_s: int = 300
    #: JDB: largest accepted distance between the payload's ``ts`` and our clock.
    jdb_ts_window_s: int = 30
    #: Calls per second allowed per client (0 = unlimited).
    rate_limit_per_client: int = 0
    #: A file whose token buckets every server process naming it shares (service/ratelimit.py);
    #: None: each process counts alone. ``serve --workers N`` makes one when none is named.
    rate_limit_file: str | None = None
    #: How often cached client credentials are reloaded from the database.
    client_cache_ttl_s: float = 5.0
    #: Secret used to hash client secrets; by default one is generated per installation.
    secret_key: str | None = None
    #: Run the background worker inside ``serve`` (the embedded default does).
    worker_in_process: bool = True
    #: Largest batch the worker claims at once.
    worker_batch_size: int = 50
    #: Hold / pending credit age after which the reconciler asks the game (seamless 1.6).
    reconcile_after_s: int = 49 * 3600
    #: Retry schedule of deliveries: gaps in seconds; then every N s until the window ends.
    retry_schedule: str = "0,5,10,20,40,120,300,600,1800;every=3600;window=172800"
    #: Timeout of one outgoing HTTP call (callbacks, queries).
    http_timeout_s: float = 10.0
    #: How long a worker owns the messages it claimed; must exceed one call's timeout.
    worker_lease_s: float = 60.0
    #: How long an idle worker waits before looking for due messages again.
    worker_poll_s: float = 1.0
    #: How often the worker runs the reconciler and the idempotency purge.
    worker_jobs_interval_s: float = 60.0
    #: Idempotency records deleted per purge transaction.
    purge_batch_size: int = 1000
    #: After an unanswered reconciliation query, wait this long before asking again.
    reconcile_retry_s: int = 3600
    #: Game side (the SDK): an opened withdraw/deposit the game has not decided on within this
    #: time is rolled back by the settlement worker (the game is presumed dead).
    settlement_decide_within_s: int = 300
    #: Game side: the seamless wallet the settlement worker delivers to (unset = no delivery).
    game_wallet_url: str | None = None
    game_wallet_username: str | None = None
    game_wallet_password: str | None = None
    #: Game side: the wallet's Basic credentials at the game's Integration API.
    game_integration_username: str | None = None
    game_integration_password: str | None = None
    #: Game side: key of the payment callback signature.
    game_payment_secret: str | None = None
    #: Back-office: life of a signed-in browser session (absolute, not sliding).
    admin_session_ttl_s: int = 8 * 3600
    #: Back-office: send the session cookie with ``Secure`` (set it when served over HTTPS).
    admin_cookie_secure: bool = False
    #: Back-office: consecutive failed sign-ins after which a user is locked out for a while.
    admin_login_failures_max: int = 5
    admin_login_lockout_s: int = 900
    #: Back-office: largest page of any list (API and pages).
    admin_page_size_max: int = 500
    #: Back-office: most rows one CSV export writes.
    admin_export_rows_max: int = 100_000
    #: Back-office: how long dashboard figures and the database gauges of /metrics are reused.
    admin_cache_s: float = 10.0
    #: /readyz: how long the database may take to answer before the process is "not ready".
    ready_timeout_s: float = 2.0
    #: prometheus-client's multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``): when set,
    #: /metrics adds up the request metrics of every server process.
    metrics_multiprocess_dir: str | None = None
    #: Serve the hot wallet calls through the raw-ASGI fast lane (gamewallet.protocols.lane);
    #: off, every request goes through Litestar. The answers are the same either way.
    fast_lane: bool = True
    #: The server process's garbage collector (gamewallet.runtime): thresholds (``None`` =
    #: CPython's own) and whether the objects alive after start-up are frozen.
    gc_threshold: tuple[int, int, int] | None = DEFAULT_GC_THRESHOLD
    gc_freeze: bool = True
    #: Log format: "json" or "console".
    log_format: str = "json"
    log_level: str = "INFO"
    #: Operator-side HRG/JDB transfers: sends of one transfer id per recovery run.
    transfer_attempts_max: int = 5
    #: ... lookups (check_transfer_operation / action 55) per recovery run.
    transfer_lookups_max: int = 10
    #: ... first pause between attempts, doubling up to transfer_backoff_max_s.
    transfer_backoff_s: float = 0.2
    transfer_backoff_max_s: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``GAMEWALLET_*`` environment variables."""
        e = os.environ if env is None else env
        d = cls()
        return replace(
            d,
            database_url=e.get("GAMEWALLET_DATABASE_URL") or d.database_url,
            db_pool_size=_int(e, "GAMEWALLET_DB_POOL_SIZE", d.db_pool_size),
            pg_batch_max=_int(e, "GAMEWALLET_PG_BATCH_MAX", d.pg_batch_max),
            sqlite_synchronous=e.get("GAMEWALLET_SQLITE_SYNCHRONOUS", d.sqlite_synchronous),
            sqlite_fast_path=e.get("GAMEWALLET_SQLITE_FAST_PATH", "1") not in ("0", "false"),
            max_body_bytes=_int(e, "GAMEWALLET_MAX_BODY_BYTES", d.max_body_bytes),
            max_header_bytes=_int(e, "GAMEWALLET_MAX_HEADER_BYTES", d.max_header_bytes),
            idempotency_retention_s=_int(
                e, "GAMEWALLET_IDEMPOTENCY_RETENTION_S", d.idempotency_retention_s
            ),
            trusted_proxies=_networks(e.get("GAMEWALLET_TRUSTED_PROXIES", "")),
            session_ttl_s=_int(e, "GAMEWALLET_SESSION_TTL_S", d.session_ttl_s),
            hrg_xts_skew_s=_int(e, "GAMEWALLET_HRG_XTS_SKEW_S", d.hrg_xts_skew_s),
            jdb_ts_window_s=_int(e, "GAMEWALLET_JDB_TS_WINDOW_S", d.jdb_ts_window_s),
            rate_limit_per_client=_int(
                e, "GAMEWALLET_RATE_LIMIT_PER_CLIENT", d.rate_limit_per_client
            ),
            rate_limit_file=e.get("GAMEWALLET_RATE_LIMIT_FILE") or None,
            secret_key=e.get("GAMEWALLET_SECRET_KEY") or None,
            worker_in_process=e.get("GAMEWALLET_WORKER_IN_PROCESS", "1") not in ("0", "false"),
            worker_batch_size=_int(e, "GAMEWALLET_WORKER_BATCH_SIZE", d.worker_batch_size),
            reconcile_after_s=_int(e, "GAMEWALLET_RECONCILE_AFTER_S", d.reconcile_after_s),
            retry_schedule=e.get("GAMEWALLET_RETRY_SCHEDULE", d.retry_schedule),
            http_timeout_s=_float(e, "GAMEWALLET_HTTP_TIMEOUT_S", d.http_timeout_s),
            worker_lease_s=_float(e, "GAMEWALLET_WORKER_LEASE_S", d.worker_lease_s),
            worker_poll_s=_float(e, "GAMEWALLET_WORKER_POLL_S", d.worker_poll_s),
            worker_jobs_interval_s=_float(
                e, "GAMEWALLET_WORKER_JOBS_INTERVAL_S", d.worker_jobs_interval_s
            ),
            purge_batch_size=_int(e, "GAMEWALLET_PURGE_BATCH_SIZE", d.purge_batch_size),
            reconcile_retry_s=_int(e, "GAMEWALLET_RECONCILE_RETRY_S", d.reconcile_retry_s),
            settlement_decide_within_s=_int(
                e, "GAMEWALLET_SETTLEMENT_DECIDE_WITHIN_S", d.settlement_decide_within_s
            ),
            game_wallet_url=e.get("GAMEWALLET_GAME_WALLET_URL") or None,
            game_wallet_username=e.get("GAMEWALLET_GAME_WALLET_USERNAME") or None,
            game_wallet_password=e.get("GAMEWALLET_GAME_WALLET_PASSWORD") or None,
            game_integration_username=e.get("GAMEWALLET_GAME_INTEGRATION_USERNAME") or None,
            game_integration_password=e.get("GAMEWALLET_GAME_INTEGRATION_PASSWORD") or None,
            game_payment_secret=e.get("GAMEWALLET_GAME_PAYMENT_SECRET") or None,
            admin_session_ttl_s=_int(e, "GAMEWALLET_ADMIN_SESSION_TTL_S", d.admin_session_ttl_s),
            admin_cookie_secure=e.get("GAMEWALLET_ADMIN_COOKIE_SECURE", "0") in ("1", "true"),
            admin_login_failures_max=_int(
                e, "GAMEWALLET_ADMIN_LOGIN_FAILURES_MAX", d.admin_login_failures_max
            ),
            admin_login_lockout_s=_int(
                e, "GAMEWALLET_ADMIN_LOGIN_LOCKOUT_S", d.admin_login_lockout_s
            ),
            admin_page_size_max=_int(e, "GAMEWALLET_ADMIN_PAGE_SIZE_MAX", d.admin_page_size_max),
            admin_export_rows_max=_int(
                e, "GAMEWALLET_ADMIN_EXPORT_ROWS_MAX", d.admin_export_rows_max
            ),
            admin_cache_s=_float(e, "GAMEWALLET_ADMIN_CACHE_S", d.admin_cache_s),
            ready_timeout_s=_float(e, "GAMEWALLET_READY_TIMEOUT_S", d.ready_timeout_s),
            metrics_multiprocess_dir=e.get("PROMETHEUS_MULTIPROC_DIR") or None,
            fast_lane=e.get("GAMEWALLET_FAST_LANE", "1") not in ("0", "false"),
            gc_threshold=parse_gc_threshold(e.get("GAMEWALLET_GC_THRESHOLD")),
            gc_freeze=e.get("GAMEWALLET_GC_FREEZE", "1") not in ("0", "false"),
            log_format=e.get("GAMEWALLET_LOG_FORMAT", d.log_format),
            log_level=e.get("GAMEWALLET_LOG_LEVEL", d.log_level),
            transfer_attempts_max=_int(
                e, "GAMEWALLET_TRANSFER_ATTEMPTS_MAX", d.transfer_attempts_max
            ),
            transfer_lookups_max=_int(e, "GAMEWALLET_TRANSFER_LOOKUPS_MAX", d.transfer_lookups_max),
            transfer_backoff_s=float(
                e.get("GAMEWALLET_TRANSFER_BACKOFF_S") or d.transfer_backoff_s
            ),
            transfer_backoff_max_s=float(
                e.get("GAMEWALLET_TRANSFER_BACKOFF_MAX_S") or d.transfer_backoff_max_s
            ),
        )

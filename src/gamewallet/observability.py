"""Observability: structured JSON logs with a request id, Prometheus metrics, result codes.

Every HTTP request gets a request id (the caller's ``X-Request-ID`` when it is a short,
plain token, else a new one). It is added to every log line written while the request runs
(by the :func:`add_request_id` processor, which reads the request being served) and returned
in the ``X-Request-ID`` header of every response, errors and 404s included, because
:func:`instrument` wraps the whole application, outside its exception handling.

The observer runs on every request, so it is kept cheap: a new id is a per-process random
prefix plus a counter (no system call), metric children are looked up once per label set and
kept, and the access line is skipped, arguments and all, when its level is disabled.

Secrets never reach a log line: :func:`redact` replaces the value of every key that names
one (authorization, passwords, secrets, tokens, cookies, AES keys and IVs, JDB's ``x``), at
any depth, and the access line logs the path without its query string.

Metrics are per process by default. When ``PROMETHEUS_MULTIPROC_DIR`` is set before the
server starts, prometheus-client writes them to files there and ``/metrics`` adds up every
process's (request counters, latency histograms, requests in progress); gauges read from the
database are the same whichever process answers, and pool gauges describe that process.

Protocol routes name their result with :func:`set_result_code` (e.g. ``"0000"``, ``"106"``)
and, where one URL serves many calls (JDB actions), the call with :func:`set_endpoint`.
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from gamewallet import runtime

__all__ = [
    "CONTENT_TYPE_LATEST",
    "Metrics",
    "configure_logging",
    "counter_family",
    "gauge_family",
    "instrument",
    "protocol_of",
    "redact",
    "request_id",
    "set_endpoint",
    "set_result_code",
    "uvicorn_log_config",
]

_Family = TypeVar("_Family", GaugeMetricFamily, CounterMetricFamily)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log_name = "gamewallet.http"
log = structlog.get_logger(log_name)

# --- the call being served -------------------------------------------------------------------


@dataclass
class _Call:
    """What the routes tell the observer about the request being served (mutable, shared by
    reference so that a value set in a copied context, e.g. a thread, still arrives)."""

    request_id: str
    protocol: str
    endpoint: str | None = None
    result: str | None = None


_CALL: ContextVar[_Call | None] = ContextVar("gamewallet_call", default=None)


def set_result_code(code: str | int) -> None:
    """Name the protocol's result of the request being served (the ``result`` label)."""
    call = _CALL.get()
    if call is not None:
        call.result = str(code)[:16]


def set_endpoint(name: str) -> None:
    """Name the call when the URL does not (JDB: ``action19``); keep the set of names small."""
    call = _CALL.get()
    if call is not None:
        call.endpoint = name[:64]


def request_id() -> str | None:
    """The id of the request being served, if any."""
    call = _CALL.get()
    return call.request_id if call is not None else None


#: Path prefix → protocol label, first match wins (the wire paths are fixed by the vendors).
PROTOCOL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("/wallet/", "seamless"),
    ("/apiRequest.do", "jdb"),
    ("/api/", "hrg"),
    ("/admin", "admin"),
)


def protocol_of(path: str) -> str:
    """The protocol label of a request path ("other" for health, metrics, schema…)."""
    for prefix, protocol in PROTOCOL_PREFIXES:
        if path.startswith(prefix):
            return protocol
    return "other"


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class _Ids:
    """New request ids: 16 random hex digits per process, then a 16-digit counter (32 hex
    digits, like a UUID's). Unique across processes with overwhelming probability, and one
    string format per request instead of a read of the system's random source."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        """A new prefix and counter (at start and in a forked child)."""
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count(1)

    def next(self) -> str:
        """The next id."""
        return f"{self.prefix}{next(self.counter):016x}"


_IDS = _Ids()
os.register_at_fork(after_in_child=_IDS.reseed)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.fullmatch(text) else None
    return None


# --- metrics ---------------------------------------------------------------------------------

#: Latency buckets in seconds: wallet calls are milliseconds; the tail is what matters.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The process's request metrics, in a registry of its own (one per app). The children
    of each label set are kept once looked up (label sets are few: protocol, endpoint
    template, result code)."""

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gamewallet_requests",
            "HTTP requests served, by protocol, endpoint and result code.",
            ("protocol", "endpoint", "result"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "gamewallet_request_duration_seconds",
            "Time to serve a request, by protocol and endpoint.",
            ("protocol", "endpoint"),
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "gamewallet_requests_in_progress",
            "Requests being served now, by protocol.",
            ("protocol",),
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._in_progress: dict[str, Any] = {}

    def observe(self, protocol: str, endpoint: str, result: str, seconds: float) -> None:
        """Count one finished request."""
        key = (protocol, endpoint, result)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(protocol, endpoint, result),
                self.latency.labels(protocol, endpoint),
            )
        children[0].inc()
        children[1].observe(seconds)

    def in_progress_of(self, protocol: str) -> Any:
        """The in-progress gauge child of ``protocol``."""
        child = self._in_progress.get(protocol)
        if child is None:
            child = self._in_progress[protocol] = self.in_progress.labels(protocol)
        return child

    def render(self, extra: Iterable[Metric] = ()) -> bytes:
        """The Prometheus text exposition: request metrics (of every process in multiprocess
        mode) followed by ``extra`` families computed for this scrape."""
        registry = CollectorRegistry(auto_describe=False)
        if self.multiprocess_dir:
            # prometheus-client leaves this constructor unannotated.
            MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Replay(self.registry.collect))
        families = [*extra, *gc_families()]
        registry.register(_Replay(lambda: iter(families)))
        return generate_latest(registry)


class _Replay(Collector):
    """A collector that yields what ``source`` yields (another registry, or fixed families)."""

    def __init__(self, source: Callable[[], Iterable[Metric]]) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return self.source()


def gauge_family(
    name: str,
    documentation: str,
    samples: Mapping[tuple[str, ...], float],
    label_names: tuple[str, ...] = (),
) -> GaugeMetricFamily:
    """A gauge family for one scrape: a value per tuple of label values (``()`` = none)."""
    return _filled(GaugeMetricFamily(name, documentation, labels=label_names), samples)


def counter_family(
    name: str,
    documentation: str,
    samples: Mapping[tuple[str, ...], float],
    label_names: tuple[str, ...] = (),
) -> CounterMetricFamily:
    """A counter family (``name`` without ``_total``) read off a running total at scrape time."""
    return _filled(CounterMetricFamily(name, documentation, labels=label_names), samples)


def _filled(family: _Family, samples: Mapping[tuple[str, ...], float]) -> _Family:
    for label_values, value in samples.items():
        family.add_metric(list(label_values), value)
    return family


def gc_families() -> list[Metric]:
    """The garbage collector's collections and pauses of this process, per generation (none
    until the server process has installed the record, :func:`gamewallet.runtime.tune_gc`)."""
    pauses = runtime.PAUSES
    if pauses is None:
        return []
    count = CounterMetricFamily(
        "gamewallet_gc_collections",
        "Garbage collections of this process since it started, by generation.",
        labels=["generation"],
    )
    spent = CounterMetricFamily(
        "gamewallet_gc_pause_seconds",
        "Time this process spent in garbage collections, by generation.",
        labels=["generation"],
    )
    longest = GaugeMetricFamily(
        "gamewallet_gc_pause_max_seconds",
        "Longest single garbage collection of this process, by generation.",
        labels=["generation"],
    )
    frozen = GaugeMetricFamily(
        "gamewallet_gc_frozen_objects",
        "Objects frozen after start-up, which the collector no longer scans.",
        value=gc.get_freeze_count(),
    )
    threshold = GaugeMetricFamily(
        "gamewallet_gc_threshold",
        "The collector's threshold of each generation (gc.get_threshold()).",
        labels=["generation"],
    )
    for generation, value in enumerate(gc.get_threshold()):
        threshold.add_metric([str(generation)], value)
    for generation in range(3):
        label = [str(generation)]
        count.add_metric(label, pauses.collections[generation])
        spent.add_metric(label, pauses.seconds[generation])
        longest.add_metric(label, pauses.max_seconds[generation])
    return [count, spent, longest, frozen, threshold]


# --- the ASGI wrapper ------------------------------------------------------------------------


class _Observer:
    """Wraps an ASGI app: request id, X-Request-ID header, metrics, and one access line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_request_id(scope) or _IDS.next()
        path: str = scope.get("path", "")
        call = _Call(rid, protocol_of(path))
        token = _CALL.set(call)
        header = (b"x-request-id", rid.encode("ascii"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [h for h in message.get("headers", ()) if h[0].lower() != header[0]]
                headers.append(header)
                message = {**message, "headers": headers}
            await send(message)

        in_progress = self.metrics.in_progress_of(call.protocol)
        in_progress.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            endpoint = call.endpoint or scope.get("path_template") or "unmatched"
            result = call.result or str(status)
            self.metrics.observe(call.protocol, endpoint, result, seconds)
            if _access_enabled():
                log.info(
                    "request",
                    method=scope.get("method"),
                    path=path,  # never the query string: JDB's payload travels there
                    status=status,
                    protocol=call.protocol,
                    endpoint=endpoint,
                    result=result,
                    duration_ms=round(seconds * 1000, 3),
                    peer=(scope.get("client") or ("", 0))[0],
                )
            in_progress.dec()
            _CALL.reset(token)


#: The standard-library logger of the access line once :func:`configure_logging` has routed
#: structlog through the standard library (its level decides); None before that, when
#: structlog's own configuration decides and the line is always handed to it.
_access_logger: logging.Logger | None = None


def _access_enabled() -> bool:
    """Whether an access line would be written (one cached level check)."""
    return _access_logger is None or _access_logger.isEnabledFor(logging.INFO)


def instrument(app: Any, metrics: Metrics) -> None:
    """Wrap a Litestar app's request handling (outside its exception handlers, so 404s and
    errors get a request id too) with the observer."""
    app.asgi_handler = _Observer(app.asgi_handler, metrics)


# --- logs ------------------------------------------------------------------------------------

#: Keys whose values are secrets (compared lower-case, ``-`` read as ``_``).
SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "password",
        "passwd",
        "secret",
        "token",
        "x",  # JDB: the encrypted payload
        "key",
        "iv",
        "aes_key",
        "aes_iv",
        "csrf",
        "session",
    }
)
SECRET_SUFFIXES = ("_password", "_secret", "_token", "_key", "_iv", "_cookie")
REDACTED = "[redacted]"
_MAX_DEPTH = 5


def _is_secret(key: object) -> bool:
    if not isinstance(key, str):
        return False
    name = key.lower().replace("-", "_")
    return name in SECRET_KEYS or name.endswith(SECRET_SUFFIXES)


def _scrub(value: Any, depth: int) -> Any:
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {k: REDACTED if _is_secret(k) else _scrub(v, depth + 1) for k, v in value.items()}
    if (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(item, tuple) and len(item) == 2 for item in value)
    ):
        # Header lists: [(name, value), ...]
        return [
            (k, REDACTED if _is_secret(k.decode() if isinstance(k, bytes) else k) else v)
            for k, v in value
        ]
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace the value of every secret-named key, at any depth."""
    for key in list(event):
        if key == "event":
            continue
        event[key] = REDACTED if _is_secret(key) else _scrub(event[key], 0)
    return event


def add_request_id(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the id of the request being served, unless the line names one."""
    call = _CALL.get()
    if call is not None and "request_id" not in event:
        event["request_id"] = call.request_id
    return event


def _shared_processors() -> list[Any]:
    """What every line goes through, ours and the standard library's alike."""
    return [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]


def log_formatter(fmt: str = "json") -> logging.Formatter:
    """The formatter of every log line: one JSON object (``fmt="console"``: text for people),
    with the request id when there is one and every secret redacted. Also a ``dictConfig``
    factory, so that uvicorn's own lines (e.g. of its supervisor process) look the same."""
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer(sort_keys=True)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def uvicorn_log_config(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """A ``log_config`` for uvicorn (``gamewallet serve``; ``--log-config`` takes it as JSON):
    its lines through :func:`log_formatter`, and no access line of its own (it would carry
    query strings; the observer writes one without them)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "gamewallet": {"()": "gamewallet.observability.log_formatter", "fmt": fmt},
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "gamewallet",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send structlog and the standard library's loggers (uvicorn's included) to stdout
    through :func:`log_formatter`. Call once per process, before serving."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(log_formatter(fmt))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    global _access_logger  # the access line's level check, from now on the stdlib's
    _access_logger = logging.getLogger(log_name)
    # uvicorn installs its own handlers at start-up: route its lines through ours instead.
    for name in ("uvicorn", "uvicorn.error", "litestar"):
        named = logging.getLogger(name)
        named.handlers = []
        named.propagate = True
    # uvicorn's access line would carry query strings (JDB's payload travels there); the
    # observer writes its own access line without them.
    logging.getLogger("uvicorn.access").disabled = True

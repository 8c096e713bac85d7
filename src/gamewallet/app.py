"""Composition root: the ASGI application built from settings and a store.

Each wire protocol contributes one Litestar router (with its own error envelope), the
back-office contributes the admin API and pages, and this module adds health checks and
the OpenAPI description. ``create_app`` is what tests use; ``app_factory`` is what
``gamewallet serve`` hands to uvicorn in every worker process.

Request handling, outermost first: the observer (request id, metrics, access line), the fast
lane (the hot wallet calls served without the framework, when ``fast_lane`` is on; see
:mod:`gamewallet.protocols.lane`), then Litestar's own routing. Each protocol's router and
lane handlers share one ``*Api`` object (rate limiters, caches, in-flight registries).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Response, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from gamewallet.admin.routes import build_admin
from gamewallet.observability import Metrics, configure_logging, instrument
from gamewallet.protocols.hrg.lane import lane_routes as hrg_lane
from gamewallet.protocols.hrg.routes import HrgApi
from gamewallet.protocols.hrg.routes import build_router as hrg_router
from gamewallet.protocols.jdb.lane import lane_routes as jdb_lane
from gamewallet.protocols.jdb.routes import JdbApi
from gamewallet.protocols.jdb.routes import build_router as jdb_router
from gamewallet.protocols.lane import LaneHandler, install_lane
from gamewallet.protocols.seamless.lane import lane_routes as seamless_lane
from gamewallet.protocols.seamless.routes import SeamlessApi
from gamewallet.protocols.seamless.routes import build_router as seamless_router
from gamewallet.runtime import freeze_after_startup, tune_gc
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import open_store
from gamewallet.store.port import StoreError
from gamewallet.worker.build import in_process_worker


def create_app(
    services: Services,
    *,
    manage_store: bool = True,
    run_worker: bool = False,
    fast_lane: bool | None = None,
    freeze_gc: bool = False,
) -> Litestar:
    """The ASGI app for ``services``; ``manage_store`` starts/closes the store with the app,
    ``run_worker`` runs the background worker in this process while the app runs,
    ``fast_lane`` (default: the setting) serves the hot calls through the fast lane,
    ``freeze_gc`` freezes the objects alive once the app has started (a server process only:
    see :mod:`gamewallet.runtime`)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await services.start(start_store=manage_store)
        if freeze_gc:
            freeze_after_startup()
        try:
            if run_worker:
                async with in_process_worker(services.store, services.clock, services.settings):
                    yield
            else:
                yield
        finally:
            if manage_store:
                await services.close()

    @get("/healthz", include_in_schema=False, sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", include_in_schema=False)
    async def readyz() -> Response[dict[str, str]]:
        # Ready = the database answers in time (it is read here, not just pinged).
        try:
            await asyncio.wait_for(services.clients.reload(), services.settings.ready_timeout_s)
        except (StoreError, OSError, TimeoutError):
            return Response({"status": "unavailable", "reason": "database"}, status_code=503)
        return Response({"status": "ready"})

    metrics = Metrics(multiprocess_dir=services.settings.metrics_multiprocess_dir)
    seamless_api, hrg_api, jdb_api = SeamlessApi(services), HrgApi(services), JdbApi.build(services)
    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            seamless_router(services, seamless_api),
            hrg_router(services, hrg_api),
            jdb_router(services, jdb_api),
            *build_admin(services, metrics),
        ],
        lifespan=[lifespan],
        request_max_body_size=services.settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="gamewallet",
            version="0.1.0",
            description="Seamless wallet, HRG and JDB transfer APIs over one double-entry ledger.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="An admin API token (gamewallet admin create-token).",
                    ),
                    "SessionCookie": SecurityScheme(
                        type="apiKey",
                        name="gw_admin",
                        security_scheme_in="cookie",
                        description="A signed-in back-office session; changes also need"
                        " the X-CSRF-Token header.",
                    ),
                }
            ),
        ),
        debug=False,
        # Logging is configured once per process (observability.configure_logging), not here.
        logging_config=None,
    )
    if services.settings.fast_lane if fast_lane is None else fast_lane:
        routes: dict[str, LaneHandler] = {
            **seamless_lane(seamless_api),
            **hrg_lane(hrg_api),
            **jdb_lane(jdb_api),
        }
        install_lane(app, routes, services.settings.max_body_bytes)
    # Outermost, so that every response (404s and errors too) gets a request id.
    instrument(app, metrics)
    return app


def app_factory() -> Litestar:
    """The app of one server process, configured from the environment."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    tune_gc(settings.gc_threshold)
    store = open_store(
        settings.database_url,
        pool_size=settings.db_pool_size,
        pg_batch_max=settings.pg_batch_max,
        sqlite_fast_path=settings.sqlite_fast_path,
        sqlite_synchronous=settings.sqlite_synchronous,
    )
    return create_app(
        Services(settings, store),
        run_worker=settings.worker_in_process,
        freeze_gc=settings.gc_freeze,
    )

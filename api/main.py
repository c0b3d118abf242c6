"""The FastAPI application: ``create_app()`` wires settings, database, publisher and routes.

``uvicorn --factory api.main:create_app`` serves it with settings from the environment; tests
pass their own settings, database (e.g. bound to a rolled-back connection) and publisher.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware

from api import logs
from api.config import Settings, get_settings
from api.db import Database
from api.errors import BodyLimitMiddleware, install_error_handlers
from api.middleware import AdmissionMiddleware, BrowserSafetyMiddleware
from api.observability import Metrics, RequestMiddleware
from api.openapi import describe_limits
from api.quotas import Quotas
from api.routes import catalog, experiments, health, runs, summary
from api.routes.health import ReadinessCache
from api.services.queue import Publisher

#: Paths answered even when the server is saturated (probes and scrapes).
UNTHROTTLED = ("/healthz", "/readyz", "/metrics")

API_VERSION = "1.0.0"
#: Responses smaller than this go out uncompressed (gzip would not pay for its header).
GZIP_MIN_BYTES = 1024
#: zlib's default level rather than Starlette's 9: on a 13.7 MB summary 9 takes 0.22 s of CPU
#: for a body 1.5 % smaller than level 6's (0.12 s).
GZIP_LEVEL = 6


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    publisher: Publisher | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    owns_db = database is None
    db = database or Database.from_settings(settings)
    pub = publisher or Publisher(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_db:
            db.dispose()
        if publisher is None:
            pub.close()

    app = FastAPI(
        title="optbench",
        version=API_VERSION,
        summary="Benchmark neural-network optimizers as jobs.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.publisher = pub
    logs.configure(settings.log_format)
    app.state.quotas = Quotas(settings)
    app.state.metrics = Metrics(settings, db)
    app.state.readiness = ReadinessCache()
    # Added innermost first: a request meets the request id / metrics / access log, CORS,
    # admission, browser safety, gzip, then the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Summaries and curves are JSON of repetitive numbers: gzip shrinks them ~5x.
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL)
    app.add_middleware(BrowserSafetyMiddleware, allowed_origins=settings.cors_origins)
    app.add_middleware(
        AdmissionMiddleware,
        limit=settings.max_concurrent_requests,
        wait_s=settings.admission_wait_s,
        exempt=UNTHROTTLED,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-None-Match"],
            expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID"],
        )
    app.add_middleware(RequestMiddleware, metrics=app.state.metrics)
    install_error_handlers(app)
    for module in (experiments, runs, catalog, health, summary):
        app.include_router(module.router)
    summary.mount_dashboard(app)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_limits(generate(), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app

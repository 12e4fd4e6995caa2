"""The web application: API under /api/v1 (OpenAPI at /docs) and the web pages."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI
from fastapi_offline import FastAPIOffline

from surveillance.http import access_log, openapi, problems, web
from surveillance.http.api import webhook_docs
from surveillance.http.api.routes import (
    adverse_events,
    alerts,
    assessments,
    audit,
    feeds,
    fhir_adverse_events,
    fhir_definitions,
    patients,
    protocols,
    results_review,
    sites,
    users,
    webhooks,
)
from surveillance.http.body_limit import BodyLimit
from surveillance.http.cache import TtlCache
from surveillance.http.deps import AppState
from surveillance.http.inputs import plain_parameters
from surveillance.http.security_headers import SecurityHeaders
from surveillance.kit.log_setup import log_to_stderr
from surveillance.main import Runtime, build_runtime

API_PREFIX = "/api/v1"
DOCS_ASSETS = "/docs-assets"


def _lifespan(threads: int) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # As many worker threads as pooled connections: a thread never waits for a
        # connection, and fewer threads contend for the GIL than anyio's default 40.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        access_log.install()  # again: a server may have configured logging after create_app
        yield

    return lifespan


def create_app(runtime: Runtime) -> FastAPI:
    """Build the app on ``runtime``; the schema must be migrated."""
    settings = runtime.settings
    # Swagger UI from assets shipped in the package, not a CDN: a hospital network without
    # internet access still shows /docs. No ReDoc: its page fetches a logo from redoc.ly.
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        redoc_url=None,
        title="LTFU surveillance",
        summary="Long-term follow-up after gene therapy: calendars, due lists, outcomes, audit.",
        version="0.1.0",
        lifespan=_lifespan(settings.db_threads),
        # Control characters in a URL are refused before any route reads them.
        dependencies=[Depends(plain_parameters)],
    )
    app.state.surveillance = AppState(
        runtime=runtime,
        principals=TtlCache(settings.cache_seconds),
        sites=TtlCache(settings.cache_seconds),
    )
    app.state.settings = settings  # the runtime's: for the alert policy and webhook URL checks
    problems.install(app, pages=web.error_page_for)  # a browser gets a page, the API JSON
    access_log.install()  # feed tokens travel in query strings: never into the access log
    api = APIRouter(prefix=API_PREFIX)
    for router in (
        patients.router,
        audit.router,
        assessments.router,
        sites.router,
        results_review.router,
        protocols.router,
        alerts.router,
        webhooks.router,
        adverse_events.router,
        feeds.router,
        users.router,
    ):
        api.include_router(router)
    app.include_router(api)
    app.include_router(fhir_definitions.router)  # canonical URLs: outside /api/v1
    app.include_router(fhir_definitions.identifier_systems)
    app.include_router(fhir_adverse_events.router)  # where the feed's fullUrls point
    webhook_docs.document(app)  # the outgoing webhooks, in the OpenAPI document
    web.install(app, settings)  # the pages and /static

    @app.get("/healthz", tags=["ops"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    openapi.install(app)  # errors as problem details, and the security schemes
    # Refuse an oversized body before anything reads it (a 413, not a buffered 150 MB).
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    # Outermost: the pages' security headers on every answer (a 413 too), no-store on the API.
    app.add_middleware(SecurityHeaders)
    return app


def app_from_environment() -> FastAPI:
    """The app on the environment's settings: what each process of ``serve --workers N``
    builds for itself (uvicorn imports this factory in every worker it starts)."""
    log_to_stderr()  # a fresh interpreter: the supervisor's handler is not inherited
    app = create_app(build_runtime())
    freeze_startup_objects()
    return app


def freeze_startup_objects() -> None:
    """Move everything built so far (modules, templates, protocols: it lives as long as the
    server process) out of the garbage collector's sight.

    Without this a full collection walked it all every few hundred requests, a ~180 ms
    pause that was the patient page's p95 (224 ms; 90 ms with it, the median unchanged).
    Called once by a serving process after it built its app; not in ``create_app`` (a test
    process builds hundreds of apps, and a full collection of its heap takes seconds).
    """
    gc.collect()
    gc.freeze()

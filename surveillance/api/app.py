"""The web application: API under /api/v1 (OpenAPI at /docs) and the web pages."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

import rules

from ..clock import Clock, system_clock
from ..config import Settings, get_settings
from ..db import make_engine
from ..protocol_store import registry_for
from . import problems
from .deps import AppState
from .routes import patients

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings | None = None, *, clock: Clock = system_clock, registry: rules.ProtocolRegistry | None = None
) -> FastAPI:
    """Build the app on ``settings`` (default: the environment); the schema must be migrated."""
    settings = settings or get_settings()
    app = FastAPI(
        title="LTFU surveillance",
        summary="Long-term follow-up after gene therapy: calendars, due lists, outcomes, audit.",
        version="0.1.0",
    )
    app.state.surveillance = AppState(
        engine=make_engine(settings.database_url),
        registry=registry or registry_for(settings.protocols_dir),
        clock=clock,
        base_url=settings.base_url,
    )
    problems.install(app)
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(patients.router)
    app.include_router(api)

    @app.get("/healthz", tags=["ops"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app

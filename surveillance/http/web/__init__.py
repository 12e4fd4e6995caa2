"""The web pages: server-rendered Jinja2 templates and one CSS file, no front-end build.

Depends on the feature packages (``patients``, ``adverse_events``, ``alerting``, ...) and
on ``http.deps`` for the shared application state; the API does not depend on it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from surveillance.config import Settings
from surveillance.http.web.render import WebConfig, error_page_for
from surveillance.http.web.routes import (
    account,
    adverse_events,
    alerts,
    assessment_page,
    dashboard,
    due,
    due_exports,
    escalations,
    outcomes,
    patient,
    patient_audit,
    patient_changes,
    patients,
    results_review,
    safety,
    signin,
    users,
    visits,
    webhooks,
)

STATIC_DIR = Path(__file__).parent / "static"
__all__ = ["error_page_for", "install"]


def install(app: FastAPI, settings: Settings) -> None:
    """Add the pages and ``/static`` to ``app``."""
    app.state.web = WebConfig(secure_cookies=settings.secure_cookies)
    pages = APIRouter()
    for module in (
        signin,
        account,
        due,
        outcomes,
        visits,
        patients,  # before ``patient``: /patients/new is not a study id
        patient,
        patient_audit,
        assessment_page,
        patient_changes,
        adverse_events,
        dashboard,
        escalations,
        alerts,
        results_review,
        due_exports,
        webhooks,
        users,
        safety,
    ):
        pages.include_router(module.router)
    app.include_router(pages)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        # Browsers ask for it at the root whatever the page links to.
        return FileResponse(
            STATIC_DIR / "favicon.ico",
            media_type="image/vnd.microsoft.icon",
            headers={"Cache-Control": "public, max-age=86400"},
        )

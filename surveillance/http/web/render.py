"""Rendering pages: templates, flash messages, security headers and error pages.

Page routes use ``PageRoute``: a domain error becomes an HTML page with the right status
(another site's patient is the same 404 as a patient that does not exist), and a missing
session becomes a redirect to the sign-in page.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

import rules
from surveillance.accounts.models import Role
from surveillance.errors import SurveillanceError
from surveillance.http.deps import AppState
from surveillance.http.web.session import (
    SESSION_COOKIE,
    SignInRequired,
    WebUser,
    login_url,
    optional_web_user,
)
from surveillance.records.sites import list_sites

log = logging.getLogger("surveillance.web")
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
FLASH_COOKIE = "ltfu_flash"
FlashKind = Literal["success", "error", "info"]
_TITLES = {
    403: "Not allowed",
    404: "Not found",
    405: "Not possible here",
    409: "Conflict",
    412: "Changed meanwhile",
    422: "Invalid input",
    500: "Something went wrong",
}
# What a page says about an error raised outside the pages (an unknown URL, a bug).
_OUTSIDE = {
    404: "There is no page at this address. The link may be mistyped or out of date: "
    "start again from your start page.",
    405: "This address cannot be opened like this. Go back and use the page's buttons.",
    500: "Something went wrong on our side, and what you asked for was not done. "
    "Nothing saved before is lost. Try again in a moment; if it happens again, tell "
    "your administrator what you were doing and when.",
}
# Paths whose errors stay problem details whatever the client accepts.
_MACHINE_PATHS = ("/api/", "/fhir/", "/docs", "/redoc", "/openapi.json", "/healthz", "/static/")
_HEADERS = {
    "Cache-Control": "no-store",  # clinical data stays out of shared and back-button caches
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
# How a page says that a patient is unknown or at another site (the same answer for both).
NO_SUCH_PATIENT = "There is no patient {study_id!r} at your sites."


@dataclass(frozen=True)
class WebConfig:
    secure_cookies: bool = False


@dataclass(frozen=True)
class Flash:
    kind: FlashKind
    text: str


@dataclass(frozen=True)
class NavLink:
    label: str
    href: str


def web_config(request: Request) -> WebConfig:
    config: WebConfig = getattr(request.app.state, "web", WebConfig())
    return config


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.surveillance
    return state


def set_flash(request: Request, response: Response, kind: FlashKind, text: str) -> None:
    """A message for the next page shown (after a redirect), in a short-lived cookie."""
    value = base64.urlsafe_b64encode(json.dumps([kind, text]).encode()).decode()
    response.set_cookie(
        FLASH_COOKIE,
        value,
        max_age=120,
        path="/",
        httponly=True,
        samesite="lax",
        secure=web_config(request).secure_cookies,
    )


def _read_flash(request: Request) -> Flash | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, binascii.Error, TypeError):
        return None
    return Flash(kind, str(text)) if kind in ("success", "error", "info") else None


def nav_links(state: AppState, user: WebUser | None) -> list[NavLink]:
    if user is None:
        return []
    principal = user.principal
    if principal.role is Role.pharmacovigilance:
        return [NavLink("Your access", "/access")]
    if principal.is_admin:
        with state.read() as session:
            sites = [site.id for site in list_sites(session)]
    else:
        sites = sorted(principal.sites)
    links = [NavLink(f"Due list · {site}", f"/sites/{quote(site)}/due") for site in sites]
    links += [
        NavLink(f"Adverse events · {site}", f"/sites/{quote(site)}/adverse-events")
        for site in sites
    ]
    admin = [NavLink("Alerts", "/admin/alerts")] if principal.is_admin else []
    return [*links, NavLink("Dashboard", "/dashboard"), NavLink("Outgoing mail", "/mail"), *admin]


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    user: WebUser | None,
    status_code: int = 200,
) -> HTMLResponse:
    flash = _read_flash(request)
    full = {
        "user": user,
        "flash": flash,
        "nav": nav_links(app_state(request), user),
        "current_path": request.url.path,
        **context,
    }
    response = TEMPLATES.TemplateResponse(
        request, name, full, status_code=status_code, headers=_HEADERS
    )
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(url: str) -> RedirectResponse:
    """After a form: 303 See Other, so a reload does not post the form again."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def error_page(
    request: Request, status_code: int, message: str, user: WebUser | None
) -> HTMLResponse:
    title = _TITLES.get(status_code, "Something went wrong")
    context = {"title": title, "status_code": status_code, "message": message}
    return render(request, "error.html", context, user=user, status_code=status_code)


class PageRoute(APIRoute):
    """A route that answers errors with HTML pages instead of problem details."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                response = redirect(login_url(exc.next_url))
                if SESSION_COOKIE in request.cookies:
                    response.delete_cookie(SESSION_COOKIE, path="/")
                return response
            except SurveillanceError as exc:
                return await _error(request, exc.status_code, exc.message)
            except rules.RulesError as exc:
                return await _error(request, 422, str(exc))
            except RequestValidationError as exc:
                fields = ", ".join(str(e["loc"][-1]) for e in exc.errors())
                return await _error(
                    request, 422, f"Some of the values sent are not valid: {fields}."
                )

        return page


async def _error(request: Request, status_code: int, message: str) -> HTMLResponse:
    def build() -> HTMLResponse:
        user = optional_web_user(request, app_state(request))
        return error_page(request, status_code, message, user)

    return await run_in_threadpool(build)


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not the API, not a script, not a stylesheet)."""
    if request.url.path.startswith(_MACHINE_PATHS):
        return False
    return "text/html" in request.headers.get("accept", "")


async def error_page_for(request: Request, status_code: int) -> HTMLResponse | None:
    """The page for an error outside the page routes, or ``None`` (problem details)."""
    if not wants_page(request):
        return None
    message = _OUTSIDE.get(status_code, _OUTSIDE[500] if status_code >= 500 else "")
    if not message:
        return None  # a 4xx the pages never cause: the problem details say it best

    def build() -> HTMLResponse:
        try:
            user = optional_web_user(request, app_state(request))
        except Exception:  # after a bug the database may be what failed: no header then
            if status_code < 500:
                raise
            user = None
        return error_page(request, status_code, message, user)

    return await run_in_threadpool(build)


def parse_day(value: str) -> date | None:
    """A YYYY-MM-DD query parameter; ``None`` when empty or not a date (the page uses today)."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def fmt_date(value: date | None) -> str:
    return value.isoformat() if value else "—"


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


TEMPLATES.env.filters["d"] = fmt_date
TEMPLATES.env.filters["pct"] = fmt_rate
TEMPLATES.env.globals["CSRF_FIELD"] = "csrf_token"

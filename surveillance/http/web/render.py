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
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
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
from surveillance.accounts.auth import Refused
from surveillance.accounts.models import Role
from surveillance.errors import SurveillanceError
from surveillance.http.denials import record_denial
from surveillance.http.deps import AppState
from surveillance.http.security_headers import SECURITY_HEADERS
from surveillance.http.web.effects_text import effects_summary
from surveillance.http.web.session import (
    SESSION_COOKIE,
    SignInRequired,
    WebUser,
    login_url,
    optional_web_user,
)
from surveillance.kit import i18n, reasons, status_reasons
from surveillance.kit.i18n import N_
from surveillance.kit.i18n import gettext as _
from surveillance.kit.status_reasons import PATIENT_STATUS_LABELS
from surveillance.records.sites import list_sites

log = logging.getLogger("surveillance.web")

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
FLASH_COOKIE = "ltfu_flash"
FlashKind = Literal["success", "error", "info"]
_TITLES = {  # translated when shown (N_ only marks them for the catalogs)
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Not possible here"),
    409: N_("Conflict"),
    412: N_("Changed meanwhile"),
    422: N_("Invalid input"),
    500: N_("Something went wrong"),
}
# What a page says about an error raised outside the pages (an unknown URL, a bug).
_OUTSIDE = {  # translated when shown
    404: N_(
        "There is no page at this address. The link may be mistyped or out of date: "
        "start again from your start page."
    ),
    405: N_("This address cannot be opened like this. Go back and use the page's buttons."),
    500: N_(
        "Something went wrong on our side, and what you asked for was not done. "
        "Nothing saved before is lost. Try again in a moment; if it happens again, tell "
        "your administrator what you were doing and when."
    ),
}
# Paths whose errors stay problem details whatever the client accepts.
_MACHINE_PATHS = ("/api/", "/fhir/", "/docs", "/redoc", "/openapi.json", "/healthz", "/static/")
_HEADERS = {
    "Cache-Control": "no-store",  # clinical data stays out of shared and back-button caches
    **SECURITY_HEADERS,
}
# How a page says that a patient is unknown or at another site (the same answer for both).
NO_SUCH_PATIENT = N_("There is no patient {study_id!r} at your sites.")


@dataclass(frozen=True)
class WebConfig:
    secure_cookies: bool = False


@dataclass(frozen=True)
class Flash:
    kind: FlashKind
    text: str


# A message in English with its values ("Enrolled {study_id} at {site}."), translated in
# the language of the page that shows it.
Sentence = tuple[str, dict[str, Any]]


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


def set_flash(
    request: Request,
    response: Response,
    kind: FlashKind,
    text: str | list[Sentence],
    **values: Any,
) -> None:
    """A message for the next page shown (after a redirect), in a short-lived cookie.

    ``text`` is the English message (a catalog msgid) with ``{name}`` placeholders for
    ``values``, or several such sentences; the next page translates it into its language.
    """
    sentences = [(text, values)] if isinstance(text, str) else text
    payload = [[msgid, {k: str(v) for k, v in args.items()}] for msgid, args in sentences]
    value = base64.urlsafe_b64encode(json.dumps([kind, payload]).encode()).decode()
    response.set_cookie(
        FLASH_COOKIE,
        value,
        max_age=120,
        path="/",
        httponly=True,
        samesite="lax",
        secure=web_config(request).secure_cookies,
    )


def translate(text: str, values: dict[str, Any] | None = None) -> str:
    """An English message in the language of the rendering, its ``{name}``s filled in.

    A value whose name ends in ``_day`` is an ISO date, written in words (``3 dic 2026``);
    one ending in ``_label`` is a catalogued word, translated too; one ending in ``_term``
    is protocol text (an assessment's name), in the protocol's words for the language.
    """
    translated = _(text)
    if not values:
        return translated
    values = {name: _value(name, value) for name, value in values.items()}
    try:
        return translated.format(**values)
    except (KeyError, IndexError, ValueError):  # a broken translation: the English is right
        return text.format(**values)


def _value(name: str, value: Any) -> Any:
    if name.endswith("_day"):
        return i18n.format_day(value)
    if name.endswith("_label"):
        return _(value)
    if name.endswith("_term"):
        return i18n.term(value)
    return value


def _read_flash(request: Request) -> Flash | None:
    """The flash of the cookie, translated (call while rendering: ``use_locale``)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        kind, payload = json.loads(base64.urlsafe_b64decode(raw.encode()))
        if isinstance(payload, str):
            text = translate(payload)
        else:
            text = " ".join(translate(str(msgid), dict(args)) for msgid, args in payload)
    except (ValueError, binascii.Error, TypeError):
        return None
    return Flash(kind, text) if kind in ("success", "error", "info") else None


def nav_links(state: AppState, user: WebUser | None) -> list[NavLink]:
    if user is None:
        return []
    principal = user.principal
    if principal.role is Role.pharmacovigilance:
        return [NavLink(_("Safety cases"), "/safety"), NavLink(_("Your access"), "/access")]
    if principal.is_admin:
        with state.read() as session:
            sites = [site.id for site in list_sites(session)]
    else:
        sites = sorted(principal.sites)
    due, patients = _("Due list · {site}"), _("Patients · {site}")
    events = _("Adverse events · {site}")
    links = [NavLink(due.format(site=site), f"/sites/{quote(site)}/due") for site in sites]
    links += [
        NavLink(patients.format(site=site), f"/sites/{quote(site)}/patients") for site in sites
    ]
    links += [
        NavLink(events.format(site=site), f"/sites/{quote(site)}/adverse-events") for site in sites
    ]
    admin = (
        [
            NavLink(_("Alerts"), "/admin/alerts"),
            NavLink(_("Webhooks"), "/admin/webhooks"),
            NavLink(_("Users"), "/admin/users"),
            NavLink(_("Safety cases"), "/safety"),
        ]
        if principal.is_admin
        else []
    )
    return [
        *links,
        NavLink(_("Dashboard"), "/dashboard"),
        NavLink(_("Outgoing mail"), "/mail"),
        *admin,
    ]


ROLE_LABELS = {
    Role.nurse: N_("nurse"),
    Role.investigator: N_("investigator"),
    Role.pharmacovigilance: N_("pharmacovigilance"),
    Role.admin: N_("admin"),
}


def role_label(role: Role) -> str:
    return _(ROLE_LABELS[role])


# A refused role, in the page's words (the API keeps the English of ``auth.refusal``).
_PEOPLE = {
    Role.nurse: N_("nurses"),
    Role.investigator: N_("investigators"),
    Role.pharmacovigilance: N_("pharmacovigilance staff"),
    Role.admin: N_("administrators"),
}
_SIGNED_IN_AS = {
    Role.nurse: N_("You are signed in as a nurse."),
    Role.investigator: N_("You are signed in as an investigator."),
    Role.pharmacovigilance: N_("You are signed in as pharmacovigilance."),
    Role.admin: N_("You are signed in as an administrator."),
}


def refusal_text(refused: Refused) -> str:
    """ "Only investigators and administrators can change a patient's status. You are
    signed in as a nurse.", in the language of the rendering."""
    people = [_(_PEOPLE[r]) for r in refused.allowed]
    who = (
        people[0]
        if len(people) == 1
        else _("{some} and {last}").format(some=", ".join(people[:-1]), last=people[-1])
    )
    only = _("Only {who} can {action}.").format(who=who, action=_(refused.to))
    return f"{only} {_(_SIGNED_IN_AS[refused.role])}"


SEX_LABELS = {"F": N_("female"), "M": N_("male")}
# An assessment's status (an adverse event's reporting deadlines).
ASSESSMENT_STATUS_LABELS = {
    "pending": N_("pending"),
    "completed": N_("done"),
    "missed": N_("missed"),
    "not_done": N_("not done"),
    "cancelled": N_("cancelled"),
    "not_required": N_("not required"),
}
# An alert's delivery status (the admins' alerts page).
ALERT_STATUS_LABELS = {
    "pending": N_("pending"),
    "sending": N_("sending"),
    "sent": N_("sent"),
    "failed": N_("failed"),
    "cancelled": N_("cancelled before sending"),
    "held": N_("held"),
}
# What a re-infusion does to an assessment of the calendar (the preview's "Change" column).
CHANGE_KIND_LABELS = {
    "added": N_("added"),
    "moved": N_("moved"),
    "cancelled": N_("cancelled"),
    "reinstated": N_("reinstated"),
    # and what a version of an adverse-event case did
    "created": N_("created"),
    "updated": N_("updated"),
    "nullified": N_("nullified"),
}


def _labelled(labels: dict[str, str]) -> Callable[[object], str]:
    def label(value: object) -> str:
        text = labels.get(str(value))
        return _(text) if text is not None else str(value).replace("_", " ")

    return label


def request_locale(request: Request, user: WebUser | None) -> str:
    """The language of a page: the user's choice, else the browser's, else English."""
    stored = user.principal.locale if user is not None else None
    return i18n.choose_locale(stored, request.headers.get("accept-language"))


@contextmanager
def reader_language(request: Request, user: WebUser | None) -> Iterator[str]:
    """Text made outside a template (a flash built from many parts) in the language the
    page will be shown in, with the protocols' names of assessments."""
    terms = app_state(request).registry.name_translations()
    with i18n.use_locale(request_locale(request, user), terms) as locale:
        yield locale


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    user: WebUser | None,
    status_code: int = 200,
) -> HTMLResponse:
    terms = app_state(request).registry.name_translations()
    with i18n.use_locale(request_locale(request, user), terms) as locale:
        flash = _read_flash(request)
        full = {
            "user": user,
            "flash": flash,
            "nav": nav_links(app_state(request), user),
            "current_path": request.url.path,
            "lang": locale,
            **context,
        }
        title = full.get("title")
        if isinstance(title, str):
            full["title"] = _(title)
            if "title_args" in full:  # a translated title with values: "Results · {site}"
                full["title"] = full["title"].format(**full["title_args"])
        message = full.get("message")
        if isinstance(message, str):  # an error page's message, if the catalog has it
            full["message"] = translate(message, full.get("message_args"))
        elif callable(message):  # a message put together in the page's language
            full["message"] = message()
        if isinstance(full.get("page_error"), str):  # a form's refusal above the page
            full["page_error"] = translate(full["page_error"], full.get("page_error_args"))
        headers = {**_HEADERS, "Content-Language": locale}
        response = TEMPLATES.TemplateResponse(
            request, name, full, status_code=status_code, headers=headers
        )
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(url: str) -> RedirectResponse:
    """After a form: 303 See Other, so a reload does not post the form again."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def error_page(
    request: Request,
    status_code: int,
    message: str | Callable[[], str],
    user: WebUser | None,
    message_args: dict[str, Any] | None = None,
) -> HTMLResponse:
    """``message``: English, translated if the catalog has it (its ``{name}``s filled from
    ``message_args``), or a function that writes it in the page's language."""
    title = _TITLES.get(status_code, N_("Something went wrong"))
    context: dict[str, Any] = {"title": title, "status_code": status_code, "message": message}
    if message_args:
        context["message_args"] = message_args
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
            except Refused as exc:
                refused = exc
                await record_denial(request, exc.message)
                return await _error(request, exc.status_code, lambda: refusal_text(refused))
            except SurveillanceError as exc:
                if exc.status_code == 403:
                    await record_denial(request, exc.message)
                if exc.template is not None:
                    return await _error(request, exc.status_code, exc.template, exc.values)
                return await _error(request, exc.status_code, exc.message)
            except rules.RulesError as exc:
                return await _error(request, 422, str(exc))
            except RequestValidationError as exc:
                fields = ", ".join(str(e["loc"][-1]) for e in exc.errors())
                return await _error(
                    request,
                    422,
                    N_("Some of the values sent are not valid: {fields}."),
                    {"fields": fields},
                )

        return page


async def _error(
    request: Request,
    status_code: int,
    message: str | Callable[[], str],
    message_args: dict[str, Any] | None = None,
) -> HTMLResponse:
    def build() -> HTMLResponse:
        user = optional_web_user(request, app_state(request))
        return error_page(request, status_code, message, user, message_args)

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
    """ISO ``2026-12-03``, for machines (form values, links); people read ``| date``."""
    return value.isoformat() if value else "—"


i18n.install(TEMPLATES.env)  # {% trans %}, _(), | date, | moment, | number, | pct
TEMPLATES.env.filters["d"] = fmt_date
TEMPLATES.env.filters["reason"] = reasons.localized  # the engine's reason, in the page's language
# Why a row was cancelled, moved or marked (the services' sentences; typed text as typed).
TEMPLATES.env.filters["status_reason"] = status_reasons.localized
TEMPLATES.env.globals["CSRF_FIELD"] = "csrf_token"
TEMPLATES.env.globals["role_label"] = role_label
TEMPLATES.env.globals["patient_status_label"] = _labelled(PATIENT_STATUS_LABELS)
TEMPLATES.env.globals["sex_label"] = _labelled(SEX_LABELS)
TEMPLATES.env.globals["alert_status_label"] = _labelled(ALERT_STATUS_LABELS)
TEMPLATES.env.globals["assessment_status_label"] = _labelled(ASSESSMENT_STATUS_LABELS)
TEMPLATES.env.globals["change_kind_label"] = _labelled(CHANGE_KIND_LABELS)
TEMPLATES.env.globals["effects_summary"] = effects_summary

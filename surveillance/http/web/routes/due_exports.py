"""The due list outside the browser: a CSV download, and a calendar subscription.

The CSV is the API's (``patients.due_csv``), read with the session instead of a bearer
token. The subscription URL is the API's calendar feed (``/api/v1/sites/{site}/calendar.ics``)
with a feed token of the signed-in user for that one site, made here as
``surveillance tokens create --feed-site`` makes it (audited); only its hash is stored, so
the URL is shown once, on the page that made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlsplit, urlunsplit

from fastapi import APIRouter, Form, Request, Response

from surveillance.accounts import auth
from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.errors import NotFound
from surveillance.http.deps import AppState, State, visible_site
from surveillance.http.downloads import attachment
from surveillance.http.web.render import PageRoute, parse_day, redirect, render, set_flash
from surveillance.http.web.session import CurrentWebUser, WebUser, check_csrf
from surveillance.kit.i18n import N_
from surveillance.patients import due_csv
from surveillance.patients.due_list import DueState, DueWindow, due_page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
CSV_LIMIT = 5000  # as the API's largest page


@dataclass(frozen=True)
class Subscription:
    """A new feed URL, in the two forms calendar apps take."""

    https: str  # Google Calendar ("From URL"), Outlook ("Subscribe from web")
    webcal: str  # Apple Calendar and most phones open this directly


@router.get("/sites/{site_id}/due.csv")
def due_csv_download(
    site_id: str, state: State, user: CurrentWebUser, status: str = "", on: str = ""
) -> Response:
    """What the due list shows (overdue, then due, then the next 30 days), as the API's CSV."""
    user.principal.require_role(*CLINICAL_ROLES)
    wanted = tuple(s for s in DueState if status in ("", s.value))
    with state.read() as session:
        site = visible_site(session, user.principal, site_id)
        day = parse_day(on) or site.today(state.now())
        page = due_page(
            session,
            site_id=site.id,
            window=DueWindow.around(day),
            registry=state.registry,
            states=wanted,
            limit=CSV_LIMIT,
        )
    filename = due_csv.filename(site.id, day)
    headers = {
        "Content-Disposition": attachment(filename),
        "Cache-Control": "no-store",  # patient study ids: not for shared caches
    }
    body = due_csv.due_csv(page.items, site_id=site.id)
    return Response(body, media_type=due_csv.MEDIA_TYPE, headers=headers)


@router.get("/sites/{site_id}/calendar")
def calendar_page(request: Request, site_id: str, state: State, user: CurrentWebUser) -> Response:
    """How to subscribe, and the subscription links you made (by their first characters)."""
    return _page(request, state, user, site_id)


@router.post("/sites/{site_id}/calendar")
def create_subscription_form(
    request: Request,
    site_id: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """A new feed token for you and this site; its URL is on the answer, once."""
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(*CLINICAL_ROLES)
    with state.write() as session:
        site = visible_site(session, user.principal, site_id)
        _, token = auth.create_token(
            session,
            email=user.principal.email,
            actor=user.principal.email,
            feed_site=site.id,
            now=state.now(),
        )
    subscription = _subscription(state.base_url, site.id, token)
    return _page(request, state, user, site_id, subscription=subscription, status_code=201)


@router.post("/sites/{site_id}/calendar/revoke")
def revoke_subscription_form(
    request: Request,
    site_id: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
    prefix: Annotated[str, Form()] = "",
) -> Response:
    """Stop one of your links working (a lost phone, a shared calendar)."""
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(*CLINICAL_ROLES)
    with state.write() as session:
        site = visible_site(session, user.principal, site_id)
        mine = auth.feed_tokens(session, email=user.principal.email, site_id=site.id)
        if prefix not in {t.prefix for t in mine}:  # only your own links, and only these
            raise NotFound(N_("You have no such calendar link for this site."))
        auth.revoke_token(session, prefix=prefix, actor=user.principal.email, now=state.now())
    response = redirect(f"/sites/{quote(site.id)}/calendar")
    said = N_("The link starting {prefix}… no longer works.")
    set_flash(request, response, "success", said, prefix=prefix)
    return response


def _subscription(base_url: str, site_id: str, token: str) -> Subscription:
    """From SURVEILLANCE_BASE_URL, never the request's Host (a calendar keeps the URL)."""
    https = f"{base_url.rstrip('/')}/api/v1/sites/{quote(site_id)}/calendar.ics?token={token}"
    parts = urlsplit(https)
    return Subscription(https, urlunsplit(("webcal", *parts[1:])))


def _page(
    request: Request,
    state: AppState,
    user: WebUser,
    site_id: str,
    *,
    subscription: Subscription | None = None,
    status_code: int = 200,
) -> Response:
    user.principal.require_role(*CLINICAL_ROLES)
    with state.read() as session:
        site = visible_site(session, user.principal, site_id)
        tokens = auth.feed_tokens(session, email=user.principal.email, site_id=site.id)
    context: dict[str, Any] = {
        "title": N_("Calendar subscription · {site}"),
        "title_args": {"site": site.id},
        "site": site,
        "tokens": tokens,
        "subscription": subscription,
    }
    return render(request, "due_calendar.html", context, user=user, status_code=status_code)

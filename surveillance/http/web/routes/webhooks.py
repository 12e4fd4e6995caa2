"""Webhook endpoints for admins in the browser: list, add, disable, enable, rotate the
secret, replay. Each form calls the same ``alerting.endpoints`` function as the API (and
is audited there); a new or rotated secret is shown on the answer page, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response

from surveillance.accounts.models import Role
from surveillance.alerting import endpoints
from surveillance.alerting.kinds import WEBHOOK_EVENTS
from surveillance.errors import InvalidInput
from surveillance.http.app_settings import settings_of
from surveillance.http.deps import AppState, State
from surveillance.http.web.render import PageRoute, redirect, render, set_flash, translate
from surveillance.http.web.session import CurrentWebUser, WebUser, check_csrf
from surveillance.kit.i18n import N_, Later
from surveillance.records.sites import list_sites

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE = "/admin/webhooks"
# Why ``notifications`` refuses a URL, for the catalogs: the page says it in its reader's
# language (a test keeps these equal to notifications' own).
URL_REFUSALS = (
    N_("{url}: only http and https URLs are allowed"),
    N_("{url}: no host"),
    N_("{url}: credentials in the URL are not allowed; use the signing secret"),
    N_(
        "{url}: {address} is a private, loopback or link-local address "
        "(set SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE=true to allow it)"
    ),
)


@dataclass
class NewWebhookForm:
    """What the admin typed, kept when the form is refused, with errors per field."""

    url: str = ""
    events: list[str] = field(default_factory=list)
    site: str = ""
    errors: dict[str, str | Later] = field(default_factory=dict)


@dataclass(frozen=True)
class ShownSecret:
    """A secret on the page that made it: never stored in the clear anywhere else."""

    endpoint_id: str
    secret: str
    rotated: bool  # the old secret keeps signing for 24 hours
    old_valid_until: datetime | None


@router.get(PAGE)
def webhooks_page(request: Request, state: State, user: CurrentWebUser) -> Response:
    user.principal.require_role(Role.admin)
    return _page(request, state, user)


@router.post(PAGE)
def add_webhook_form(
    request: Request,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    events: Annotated[list[str] | None, Form()] = None,
    site: Annotated[str, Form()] = "",
) -> Response:
    """Register an endpoint; a refused URL (private, loopback, not http) or an empty event
    list comes back beside its field with everything typed kept."""
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(Role.admin)
    form = NewWebhookForm(url=url.strip(), events=events or [], site=site)
    allow_private = settings_of(request.app.state).webhook_allow_private
    try:
        # As the API: the URL (and its host's addresses) first, outside the write.
        endpoints.check_url(form.url, allow_private=allow_private)
        with state.write() as session:
            created = endpoints.add_endpoint(
                session,
                url=form.url,
                events=form.events,
                site_id=form.site or None,
                allow_private=True,  # checked above
                actor=user.principal.email,
                now=state.now(),
            )
            shown = ShownSecret(created.endpoint.id, created.secret, False, None)
    except InvalidInput as exc:
        refused = exc
        form.errors[exc.field or "url"] = Later(
            lambda: (
                translate(refused.template, refused.values) if refused.template else refused.message
            )
        )
        return _page(request, state, user, form=form, status_code=422)
    return _page(request, state, user, secret=shown, status_code=201)


@router.post(PAGE + "/{endpoint_id}/disable")
def disable_webhook_form(
    request: Request,
    endpoint_id: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Stop delivering; its alerts are held for a replay."""
    return _toggle(request, state, user, csrf_token, endpoint_id, enabled=False)


@router.post(PAGE + "/{endpoint_id}/enable")
def enable_webhook_form(
    request: Request,
    endpoint_id: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Deliver again; alerts held meanwhile wait for a replay."""
    return _toggle(request, state, user, csrf_token, endpoint_id, enabled=True)


@router.post(PAGE + "/{endpoint_id}/rotate-secret")
def rotate_secret_form(
    request: Request,
    endpoint_id: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """A new secret, shown on the answer page only; the old one also signs for 24 hours."""
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(Role.admin)
    with state.write() as session:
        rotated = endpoints.rotate_secret(
            session, endpoint_id, actor=user.principal.email, now=state.now()
        )
        shown = ShownSecret(
            endpoint_id, rotated.secret, True, rotated.endpoint.previous_secret_expires_at
        )
    return _page(request, state, user, secret=shown)


@router.post(PAGE + "/{endpoint_id}/replay")
def replay_form(
    request: Request,
    endpoint_id: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
    since: Annotated[str, Form()] = "",
) -> Response:
    """Queue again (same ids) the endpoint's sent, failed and held alerts created since
    the start of that day (UTC), as ``POST /api/v1/webhooks/{id}/replay`` does."""
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(Role.admin)
    response = redirect(f"{PAGE}#{quote(endpoint_id)}")
    try:
        day = date.fromisoformat(since)
    except ValueError:
        set_flash(request, response, "error", N_("Replay: choose the day to replay from."))
        return response
    with state.write() as session:
        count = endpoints.replay(
            session,
            endpoint_id,
            since=datetime.combine(day, time(), tzinfo=UTC),
            actor=user.principal.email,
            now=state.now(),
        )
    queued = (
        N_(
            "Queued again for {endpoint}: {count} alert created since {since_day} (UTC). "
            "The dispatcher sends it within seconds."
        )
        if count == 1
        else N_(
            "Queued again for {endpoint}: {count} alerts created since {since_day} (UTC). "
            "The dispatcher sends them within seconds."
        )
    )
    values = {"endpoint": endpoint_id, "count": count, "since_day": day.isoformat()}
    set_flash(request, response, "success", queued, **values)
    return response


def _toggle(
    request: Request,
    state: State,
    user: WebUser,
    csrf_token: str,
    endpoint_id: str,
    *,
    enabled: bool,
) -> Response:
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(Role.admin)
    with state.write() as session:
        endpoints.set_enabled(
            session, endpoint_id, enabled=enabled, actor=user.principal.email, now=state.now()
        )
    response = redirect(f"{PAGE}#{quote(endpoint_id)}")
    text = (
        N_("Enabled {endpoint}. Alerts held while it was disabled are sent after a replay.")
        if enabled
        else N_("Disabled {endpoint}. Its alerts are held (kept) until it is enabled and replayed.")
    )
    set_flash(request, response, "success", text, endpoint=endpoint_id)
    return response


def _page(
    request: Request,
    state: AppState,
    user: WebUser,
    *,
    form: NewWebhookForm | None = None,
    secret: ShownSecret | None = None,
    status_code: int = 200,
) -> Response:
    with state.read() as session:
        listed = endpoints.list_endpoints(session)
        sites = list_sites(session)
    context: dict[str, Any] = {
        "title": N_("Webhook endpoints"),
        "endpoints": listed,
        "sites": sites,
        "event_types": WEBHOOK_EVENTS,
        "form": form or NewWebhookForm(),
        "secret": secret,
        "allow_private": settings_of(request.app.state).webhook_allow_private,
        "today": state.now().date(),
    }
    return render(request, "admin_webhooks.html", context, user=user, status_code=status_code)

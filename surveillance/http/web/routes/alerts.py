"""Outgoing mail (what was written instead of sent, with no SMTP configured) and the
admins' alerts page: failed and held alerts with a Retry button, webhook endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from sqlmodel import Session

from surveillance.accounts.auth import Principal
from surveillance.accounts.models import Role
from surveillance.alerting import endpoints, operations
from surveillance.alerting.outgoing_mail import mail_item, mail_list
from surveillance.errors import Conflict, NotFound
from surveillance.http.app_settings import settings_of
from surveillance.http.deps import State
from surveillance.http.web.render import PageRoute, redirect, render, set_flash
from surveillance.http.web.session import CurrentWebUser, check_csrf
from surveillance.kit.i18n import N_
from surveillance.kit.sqltypes import MAX_INTEGER
from surveillance.records.outbox import Alert, AlertStatus, WebhookEndpoint

router = APIRouter(route_class=PageRoute, include_in_schema=False)
MAIL_LIMIT = 200
ALERT_LIMIT = 100


@dataclass(frozen=True)
class AlertsOverview:
    counts: dict[str, int]
    failed: list[Alert]
    held: list[Alert]
    endpoints: list[WebhookEndpoint]


@router.get("/mail")
def mail_page(
    request: Request,
    state: State,
    user: CurrentWebUser,
    before: Annotated[int, Query(ge=0, le=MAX_INTEGER)] = 0,
) -> Response:
    """Newest first (ids grow as mail is written): every mail for admins, the mail
    addressed to you for everyone else; ``before`` pages to older mail."""
    with state.read() as session:
        mails = mail_list(
            session, addressed_to=_reader(user.principal), before=before, limit=MAIL_LIMIT
        )
    context = {
        "title": N_("Outgoing mail"),
        "mails": mails,
        "older": mails[-1].id if len(mails) == MAIL_LIMIT else None,
        "paged": before > 0,
        "smtp_host": settings_of(request.app.state).smtp_host,
    }
    return render(request, "mail.html", context, user=user)


@router.get("/mail/{mail_id}")
def mail_detail_page(
    request: Request, mail_id: int, state: State, user: CurrentWebUser
) -> Response:
    if not 0 < mail_id <= MAX_INTEGER:
        raise NotFound("There is no such mail addressed to you.")  # no id is that large
    with state.read() as session:
        mail = mail_item(session, mail_id, addressed_to=_reader(user.principal))
    if mail is None:
        raise NotFound("There is no such mail addressed to you.")
    return render(request, "mail_detail.html", {"title": mail.subject, "mail": mail}, user=user)


@router.get("/admin/alerts")
def alerts_page(request: Request, state: State, user: CurrentWebUser) -> Response:
    """What could not be delivered (and why), what is held, and the webhook endpoints."""
    user.principal.require_role(Role.admin, to=N_("see and retry undelivered alerts"))
    with state.read() as session:
        overview = _overview(session)
    context = {"title": N_("Alerts"), "overview": overview, "limit": ALERT_LIMIT}
    return render(request, "admin_alerts.html", context, user=user)


@router.post("/admin/alerts/retry")
def retry_form(
    request: Request,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
    alert_id: Annotated[str, Form()] = "",
) -> Response:
    """Queue a failed or held alert again (same id); the dispatcher sends it within seconds."""
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(Role.admin, to=N_("see and retry undelivered alerts"))
    response = redirect("/admin/alerts")
    try:
        with state.write() as session:
            operations.retry(session, alert_id, actor=user.principal.email, now=state.now())
    except Conflict as exc:
        set_flash(request, response, "error", exc.message)
        return response
    set_flash(request, response, "success", f"Queued again: {alert_id}")
    return response


def _overview(session: Session) -> AlertsOverview:
    return AlertsOverview(
        counts=operations.status_counts(session),
        failed=operations.list_alerts(session, status=AlertStatus.failed.value, limit=ALERT_LIMIT),
        held=operations.list_alerts(session, status=AlertStatus.held.value, limit=ALERT_LIMIT),
        endpoints=endpoints.list_endpoints(session),
    )


def _reader(principal: Principal) -> str | None:
    """Whose mail a user may read: everyone's for an admin, their own otherwise."""
    return None if principal.is_admin else principal.email

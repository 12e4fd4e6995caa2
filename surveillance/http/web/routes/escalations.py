"""Escalations on the dashboard: what has been escalated, who acknowledged it, and the
"Acknowledge" form (investigators and admins; CSRF-checked) posted from each row."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from sqlmodel import Session

from surveillance.accounts.models import Role
from surveillance.alerting.escalations import (
    SiteEscalations,
    acknowledge_escalation,
    site_escalations,
)
from surveillance.errors import Conflict, InvalidInput
from surveillance.http.app_settings import policy_overrides, settings_of
from surveillance.http.deps import State
from surveillance.http.web.render import PageRoute, app_state, redirect, set_flash
from surveillance.http.web.session import CurrentWebUser, WebUser, check_csrf, safe_next
from surveillance.records.patients import Site

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PER_SITE = 10


@dataclass(frozen=True)
class EscalationPanel:
    escalations: SiteEscalations
    can_acknowledge: bool  # the right role, and the panel shows today (the form acts now)


def dashboard_escalations(
    request: Request, session: Session, user: WebUser, panels: Iterable[tuple[Site, date]]
) -> dict[str, EscalationPanel]:
    """Each dashboard panel's escalated items (site id -> panel), one pair of queries each."""
    state = app_state(request)
    overrides = policy_overrides(settings_of(request.app.state))
    acknowledger = user.role in (Role.investigator, Role.admin)
    found: dict[str, EscalationPanel] = {}
    for site, on in panels:
        escalations = site_escalations(
            session,
            site_id=site.id,
            on=on,
            registry=state.registry,
            overrides=overrides,
            limit=PER_SITE,
        )
        today = site.today(state.now())
        found[site.id] = EscalationPanel(escalations, acknowledger and on == today)
    return found


@router.post("/assessments/{key}/acknowledge")
def acknowledge_form(
    request: Request,
    key: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
    level: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Acknowledge escalation ``level`` of ``key`` with a note; back to the dashboard."""
    check_csrf(user.csrf_token, csrf_token)
    back = safe_next(next) or "/dashboard"
    study_id = key.split(":", 1)[0]
    try:
        with state.write() as session:
            ack = acknowledge_escalation(
                session,
                key=key,
                level=_level(level),
                note=note,
                user=user.principal,
                overrides=policy_overrides(settings_of(request.app.state)),
                now=state.now(),
            )
            text = f"Acknowledged escalation {ack.level} of {study_id} ({key}): {ack.note}"
    except (Conflict, InvalidInput) as exc:
        response = redirect(back)
        set_flash(request, response, "error", f"Nothing was acknowledged: {exc.message}")
        return response
    response = redirect(back)
    set_flash(request, response, "success", text)
    return response


def _level(value: str) -> int:
    if value not in ("1", "2"):
        raise InvalidInput("the escalation level is 1 or 2; reload the page and try again")
    return int(value)

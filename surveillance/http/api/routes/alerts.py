"""Alerts: acknowledge an escalation (investigators), list and retry alerts (admins).

Alert ids contain colons (``assessment.overdue:42:0:0:email:site:Rome:nurse``); they
travel in the path unescaped, and the path parameter takes slashes too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from surveillance.accounts.auth import Principal
from surveillance.accounts.models import Role
from surveillance.alerting import operations
from surveillance.alerting.escalations import acknowledge_escalation
from surveillance.http.api.alert_schemas import (
    AcknowledgementCreate,
    AcknowledgementPublic,
    AlertDetail,
    AlertPublic,
)
from surveillance.http.app_settings import AppSettings, policy_overrides
from surveillance.http.deps import CurrentUser, State
from surveillance.records.outbox import Alert, AlertStatus

router = APIRouter(tags=["alerts"])


@router.post("/assessments/{key}/acknowledge", response_model=AcknowledgementPublic)
def acknowledge_escalation_route(
    key: str, body: AcknowledgementCreate, state: State, user: CurrentUser, settings: AppSettings
) -> dict[str, Any]:
    """Acknowledge an escalation of an overdue assessment, with a note.

    Investigators of the patient's site and admins. The level must have been reached
    (1: 14 days after the window closed, 2: 60 days, by default); an acknowledged level
    is not escalated again. Twice the same level: 409.
    """
    with state.write() as session:
        ack = acknowledge_escalation(
            session,
            key=key,
            level=body.level,
            note=body.note,
            user=user,
            overrides=policy_overrides(settings),
            now=state.now(),
        )
        return {"key": key, "level": ack.level, "note": ack.note, "by": ack.by, "at": ack.at}


@router.get("/alerts", response_model=list[AlertPublic])
def list_alerts(
    state: State,
    user: CurrentUser,
    status: AlertStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Newest first; ``status=failed`` shows what could not be delivered (admins only)."""
    _admin(user)
    with state.read() as session:
        alerts = operations.list_alerts(
            session, status=status.value if status else None, limit=limit
        )
        counts = operations.attempt_counts(session, [a.id for a in alerts])
        return [alert_dict(a, counts.get(a.id, 0)) for a in alerts]


@router.get("/alerts/{alert_id:path}", response_model=AlertDetail)
def read_alert(alert_id: str, state: State, user: CurrentUser) -> dict[str, Any]:
    """One alert with every delivery attempt (admins only)."""
    _admin(user)
    with state.read() as session:
        alert = operations.get_alert(session, alert_id)
        attempts = operations.attempts_of(session, alert_id)
        return {
            **alert_dict(alert, len(attempts)),
            "attempt_log": [
                {
                    "attempted_at": a.attempted_at,
                    "outcome": a.outcome,
                    "status_code": a.status_code,
                    "detail": a.detail,
                }
                for a in attempts
            ],
        }


@router.post("/alerts/{alert_id:path}/retry", response_model=AlertPublic)
def retry_alert(alert_id: str, state: State, user: CurrentUser) -> dict[str, Any]:
    """Queue a failed or held alert again, with the same id (admins only; else 409)."""
    _admin(user)
    with state.write() as session:
        alert = operations.retry(session, alert_id, actor=user.email, now=state.now())
        counts = operations.attempt_counts(session, [alert.id])
        return alert_dict(alert, counts.get(alert.id, 0))


def alert_dict(alert: Alert, recorded: int) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "level": alert.level,
        "channel": alert.channel,
        "recipient": alert.recipient,
        "site": alert.site_id,
        "status": alert.status,
        "attempts": alert.attempts,
        "attempts_recorded": recorded,
        "last_error": alert.last_error,
        "cancel_reason": alert.cancel_reason,
        "next_attempt_at": alert.next_attempt_at,
        "created_at": alert.created_at,
        "sent_at": alert.sent_at,
    }


def _admin(user: Principal) -> None:
    user.require_role(Role.admin, to="manage alerts")

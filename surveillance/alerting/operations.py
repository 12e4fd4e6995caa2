"""Operator actions on the outbox: list, retry, acknowledge an escalation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from surveillance.accounts.auth import Principal
from surveillance.accounts.models import Role
from surveillance.alerting.models import Acknowledgement
from surveillance.errors import Conflict, InvalidInput, NotFound
from surveillance.kit import audit
from surveillance.kit.i18n import N_
from surveillance.records.outbox import Alert, AlertStatus, DeliveryAttempt
from surveillance.records.queries import find_assessment


def list_alerts(session: Session, *, status: str | None = None, limit: int = 200) -> list[Alert]:
    statement = select(Alert).order_by(col(Alert.created_at).desc(), col(Alert.id)).limit(limit)
    if status is not None:
        if status not in {s.value for s in AlertStatus}:
            raise InvalidInput(
                f"unknown status {status!r}; use one of {', '.join(s.value for s in AlertStatus)}"
            )
        statement = statement.where(col(Alert.status) == status)
    return list(session.execute(statement).scalars())


def attempts_of(session: Session, alert_id: str) -> list[DeliveryAttempt]:
    statement = (
        select(DeliveryAttempt)
        .where(col(DeliveryAttempt.alert_id) == alert_id)
        .order_by(col(DeliveryAttempt.id))
    )
    return list(session.execute(statement).scalars())


def get_alert(session: Session, alert_id: str) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id!r}")
    return alert


def status_counts(session: Session) -> dict[str, int]:
    """How many alerts are in each status (every status named, zero included)."""
    status = col(Alert.status)
    rows = session.execute(select(status, func.count()).group_by(status))
    counts = {row[0]: int(row[1]) for row in rows}
    return {s.value: counts.get(s.value, 0) for s in AlertStatus}


def attempt_counts(session: Session, alert_ids: list[str]) -> dict[str, int]:
    """Delivery attempts so far, per alert, in one query."""
    if not alert_ids:
        return {}
    alert_id = col(DeliveryAttempt.alert_id)
    rows = session.execute(
        select(alert_id, func.count()).where(alert_id.in_(alert_ids)).group_by(alert_id)
    )
    return {row[0]: int(row[1]) for row in rows}


def retry(session: Session, alert_id: str, *, actor: str, now: datetime) -> Alert:
    """Send a failed (or held) alert again, with the same id."""
    alert = get_alert(session, alert_id)
    if alert.status not in (AlertStatus.failed.value, AlertStatus.held.value):
        raise Conflict(
            f"alert {alert_id} is {alert.status}; only failed or held alerts are retried"
        )
    alert.status, alert.next_attempt_at, alert.claimed_until, alert.attempts = (
        AlertStatus.pending.value,
        now,
        None,
        0,
    )
    session.add(alert)
    audit.record(
        session, actor=actor, action="retry_alert", entity="alert", entity_key=alert_id, at=now
    )
    return alert


def acknowledge(
    session: Session, *, key: str, level: int, note: str, user: Principal, now: datetime
) -> Acknowledgement:
    """An investigator (or admin) has seen escalation ``level`` of ``key``."""
    user.require_role(Role.investigator, Role.admin, to=N_("acknowledge an escalation"))
    if level not in (1, 2):
        raise InvalidInput("escalation level is 1 (investigators) or 2 (sponsor contact)")
    if not note.strip():
        raise InvalidInput("an acknowledgement needs a note")
    patient, row = find_assessment(session, key)
    user.require_site(patient.site_id, what="assessment")
    assert row.id is not None
    if session.get(Acknowledgement, (row.id, level)) is not None:
        raise Conflict(f"escalation {level} of {key} is already acknowledged")
    ack = Acknowledgement(
        assessment_id=row.id, level=level, note=note.strip(), by=user.email, at=now
    )
    session.add(ack)
    audit.record(
        session,
        actor=user.email,
        action="acknowledge_escalation",
        entity="assessment",
        entity_key=key,
        patient_id=patient.id,
        reason=note,
        new={"level": level},
        at=now,
    )
    return ack

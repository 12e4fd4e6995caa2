"""Re-checks at send time: why an alert should no longer be sent, or None if its cause
still holds. The dispatcher cancels an alert whose cause is gone (the visit was recorded
meanwhile, the patient moved, the escalation was acknowledged...)."""

from __future__ import annotations

from typing import Protocol

from sqlmodel import Session

import rules
from surveillance.adverse_events.acks import reminder_gone
from surveillance.alerting.models import Acknowledgement
from surveillance.records.outbox import Alert
from surveillance.records.patients import (
    FOLLOWED_STATUSES,
    Assessment,
    AssessmentStatus,
    Patient,
)


class Recheck(Protocol):
    def __call__(
        self, session: Session, alert: Alert, registry: rules.ProtocolRegistry
    ) -> str | None: ...


def still_holds(session: Session, alert: Alert, registry: rules.ProtocolRegistry) -> str | None:
    """Kinds about something that cannot go away (a recorded change, a delivery problem)."""
    return None


def overdue_gone(session: Session, alert: Alert, registry: rules.ProtocolRegistry) -> str | None:
    found = _followed_here(session, alert, registry)
    return found if isinstance(found, str) else _recorded(found)


def escalation_gone(session: Session, alert: Alert, registry: rules.ProtocolRegistry) -> str | None:
    found = _followed_here(session, alert, registry)
    if isinstance(found, str):
        return found
    recorded = _recorded(found)
    if recorded is not None:
        return recorded
    ack = session.get(Acknowledgement, (found.id, alert.level))
    return None if ack is None else f"acknowledged by {ack.by}: {ack.note}"


def at_risk_gone(session: Session, alert: Alert, registry: rules.ProtocolRegistry) -> str | None:
    found = _followed_here(session, alert, registry)
    if isinstance(found, str):
        return found
    still_missed = (AssessmentStatus.missed.value, AssessmentStatus.pending.value)
    if found.status not in still_missed:
        return f"the last yearly contact was recorded as {found.status} meanwhile"
    return None


def unacknowledged_gone(
    session: Session, alert: Alert, registry: rules.ProtocolRegistry
) -> str | None:
    if not (alert.case_id and alert.case_version):
        return None
    return reminder_gone(session, alert.case_id, alert.case_version)


def _followed_here(
    session: Session, alert: Alert, registry: rules.ProtocolRegistry
) -> Assessment | str:
    """The alert's assessment, or why its patient is no longer followed at the alert's site."""
    assert alert.assessment_id is not None
    row = session.get(Assessment, alert.assessment_id)
    patient = session.get(Patient, alert.patient_id)
    if row is None or patient is None:
        return "the assessment no longer exists"
    reporting = row.category in registry.reporting_categories()  # owed whatever the status
    if patient.status not in FOLLOWED_STATUSES and not reporting:
        return f"patient {patient.study_id} is {patient.status}"
    if patient.site_id != alert.site_id:
        return f"patient {patient.study_id} transferred to {patient.site_id}"
    return row


def _recorded(row: Assessment) -> str | None:
    if row.status == AssessmentStatus.cancelled.value:  # e.g. its result was corrected
        why = f" ({row.status_reason})" if row.status_reason else ""
        return f"the assessment was cancelled meanwhile{why}"
    if row.status != AssessmentStatus.pending.value:
        return f"the assessment was recorded as {row.status} meanwhile"
    return None

"""What an alert says: its event data (frozen at the first attempt) and its email."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlmodel import Session

import rules
from surveillance.adverse_events.cases import content_of, version_of
from surveillance.adverse_events.deadlines import deadlines_of
from surveillance.adverse_events.outbox import SERIOUS, UNACKNOWLEDGED
from surveillance.patients.due_list import DueState, due_list
from surveillance.protocols.registry import assessment_name
from surveillance.records.adverse_events import AdverseEventCase
from surveillance.records.outbox import Alert
from surveillance.records.patients import Assessment, Patient, assessment_key

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def event_data(
    session: Session, alert: Alert, *, registry: rules.ProtocolRegistry, base_url: str
) -> dict[str, Any]:
    """The pseudonymous data of an alert (the webhook ``data`` and the email's facts)."""
    if alert.kind == "digest":
        return _digest_data(session, alert, registry=registry, base_url=base_url)
    if alert.kind in ("alert.failed", "webhook.disabled"):
        data: dict[str, Any] = json.loads(alert.payload or "{}")
        return data
    if alert.case_id is not None:
        return _case_data(session, alert, registry=registry, base_url=base_url)
    assert alert.assessment_id is not None
    row = session.get(Assessment, alert.assessment_id)
    patient = session.get(Patient, alert.patient_id)
    assert row is not None
    assert patient is not None
    return {
        "study_id": patient.study_id,
        "site": alert.site_id,
        "key": assessment_key(
            patient.study_id, row.infusion_number, row.assessment, row.occurrence
        ),
        "assessment": row.assessment,
        "name": assessment_name(registry, row.protocol_id, row.protocol_version, row.assessment),
        "due": row.due_on.isoformat(),
        "window_start": row.window_start.isoformat(),
        "window_end": row.window_end.isoformat(),
        "days_overdue": (alert.as_of - row.window_end).days,
        "level": alert.level,
        "as_of": alert.as_of.isoformat(),
        "patient_url": f"{base_url}/patients/{patient.study_id}",
    }


def _case_data(
    session: Session, alert: Alert, *, registry: rules.ProtocolRegistry, base_url: str
) -> dict[str, Any]:
    """The case as it was at the alert's version (versions never change)."""
    case = session.get(AdverseEventCase, alert.case_id)
    assert alert.case_id is not None
    assert alert.case_version is not None
    version = version_of(session, alert.case_id, alert.case_version)
    assert case is not None
    return {
        "change": version.change,
        "case": content_of(session, version, registry),
        "reporting_deadlines": deadlines_of(session, case, version, registry, on=alert.as_of),
        "case_url": f"{base_url}/adverse-events/{case.case_id}",
    }


def _digest_data(
    session: Session, alert: Alert, *, registry: rules.ProtocolRegistry, base_url: str
) -> dict[str, Any]:
    assert alert.site_id is not None
    day = alert.as_of
    items = due_list(
        session, site_id=alert.site_id, on=day, registry=registry, states=(DueState.due,), limit=500
    )
    week_end = day + timedelta(days=7)

    def brief(i: Any) -> dict[str, str]:
        return {
            "study_id": i.study_id,
            "name": i.name,
            "key": i.key,
            "due": i.due_on.isoformat(),
            "window_start": i.window_start.isoformat(),
            "window_end": i.window_end.isoformat(),
        }

    return {
        "site": alert.site_id,
        "date": day.isoformat(),
        "opening": [brief(i) for i in items if i.window_start == day],
        "this_week": [brief(i) for i in items if i.due_on <= week_end],
        "due_list_url": f"{base_url}/sites/{alert.site_id}/due",
    }


def render_email(alert: Alert, data: dict[str, Any]) -> tuple[str, str, str | None]:
    """(subject, plain text, html or None)."""
    context = {"kind": alert.kind, "data": data, "alert_id": alert.id}
    if alert.kind in ("assessment.overdue", "assessment.escalated"):
        label = "Overdue" if alert.kind == "assessment.overdue" else f"Escalation {alert.level}"
        subject = (
            f"[LTFU] {label}: {data['study_id']} {data['name'][:60]} "
            f"(due {data['due']}, {data['days_overdue']} days overdue)"
        )
        return subject, _render("assessment.txt", context), _render("assessment.html", context)
    if alert.kind == "patient.follow_up_at_risk":
        return (
            f"[LTFU] At risk of loss to follow-up: {data['study_id']}",
            _render("at_risk.txt", context),
            None,
        )
    if alert.kind in (SERIOUS, UNACKNOWLEDGED):
        case = data["case"]
        what = "Serious adverse event" if alert.kind == SERIOUS else "Not acknowledged"
        subject = f"[LTFU] {what}: {case['study_id']} {case['term'][:60]} ({case['case_id']})"
        return subject, _render("adverse_event.txt", context), None
    if alert.kind == "digest":
        subject = (
            f"[LTFU] {data['site']} {data['date']}: {len(data['opening'])} opening today, "
            f"{len(data['this_week'])} due this week"
        )
        return subject, _render("digest.txt", context), None
    return f"[LTFU] {data.get('what', alert.kind)}", _render("failure.txt", context), None


def _render(name: str, context: dict[str, Any]) -> str:
    return _templates.get_template(name).render(**context)

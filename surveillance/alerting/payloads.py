"""An alert's event data: what a webhook's ``data`` carries and what its email shows.

One builder per family of kinds, beside the schema the OpenAPI document publishes for it
(``http.api.webhook_docs`` reads the schemas through the registry in ``kinds``). The data
is pseudonymous (study ids, never names) and frozen at the first attempt.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field
from sqlmodel import Session

import rules
from surveillance.adverse_events.cases import content_of, version_of
from surveillance.adverse_events.deadlines import deadlines_of
from surveillance.protocols.registry import assessment_name
from surveillance.records.adverse_events import AdverseEventCase
from surveillance.records.outbox import Alert
from surveillance.records.patients import Assessment, Patient, assessment_key


class EventData(Protocol):
    """Builds an alert's event data when it is first sent."""

    def __call__(
        self, session: Session, alert: Alert, *, registry: rules.ProtocolRegistry, base_url: str
    ) -> dict[str, Any]: ...


class AssessmentEventData(BaseModel):
    """Pseudonymous: a study id, never a name."""

    study_id: str = Field(examples=["ROM-101"])
    site: str = Field(examples=["Rome"])
    key: str = Field(
        examples=["ROM-101:1:rcl_test:2"], description="study id:infusion:rule:occurrence"
    )
    assessment: str = Field(examples=["rcl_test"], description="The protocol rule id.")
    name: str = Field(examples=["Replication-competent lentivirus test"])
    due: date
    window_start: date
    window_end: date
    days_overdue: int = Field(description="Days from the window's end to as_of.")
    level: int = Field(description="0, or for assessment.escalated 1 (investigators), 2 (sponsor).")
    as_of: date = Field(description="The day (at the site) the scan saw the condition.")
    patient_url: str = Field(examples=["https://ltfu.example.org/patients/ROM-101"])


def assessment_data(
    session: Session, alert: Alert, *, registry: rules.ProtocolRegistry, base_url: str
) -> dict[str, Any]:
    """The assessment the alert is about, as the scan saw it on ``as_of``."""
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


class AdverseEventEventData(BaseModel):
    """The case version the event is about, pseudonymous, as in the feed's ``case``."""

    change: Literal["created", "updated", "nullified"]
    case: dict[str, Any] = Field(
        description="As an entry of GET /api/v1/feeds/adverse-events: case_id, version, "
        "study_id, site, site_country, sex, age_at_onset_years, term, grade, serious, ..."
    )
    reporting_deadlines: list[dict[str, Any]] = Field(
        description="The reporting clocks the protocol planned for the case (key, name, due)."
    )
    case_url: str = Field(examples=["https://ltfu.example.org/adverse-events/ROM-101-AE01"])


def case_data(
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


def stored_data(
    session: Session, alert: Alert, *, registry: rules.ProtocolRegistry, base_url: str
) -> dict[str, Any]:
    """What was written with the alert (a delivery problem told to the admins)."""
    data: dict[str, Any] = json.loads(alert.payload or "{}")
    return data

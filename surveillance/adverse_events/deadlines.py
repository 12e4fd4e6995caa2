"""A case's regulatory reporting clocks: the reporting rows the engine planned for it.

They are assessments (of the category the protocol declares its ``reporting_category``),
so they appear on due lists and dashboards, go overdue and escalate like any other; this
finds the ones of one case.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlmodel import Session, col

import rules
from surveillance.kit.bounds import is_id
from surveillance.protocols.registry import assessment_name
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion
from surveillance.records.patients import Assessment, Patient, assessment_key


def _source_result(source: str | None) -> tuple[str, int] | None:
    """(rule, occurrence) of the result a case was recorded from: "assessment
    ROM-001:1:rcl_test:2" -> ("rcl_test", 2); None for a case a person recorded."""
    if not source or not source.startswith("assessment "):
        return None
    parts = source.removeprefix("assessment ").rsplit(":", 2)
    if len(parts) != 3 or not is_id(parts[2]):
        return None
    return parts[1], int(parts[2])


def deadlines_of(
    session: Session,
    case: AdverseEventCase,
    version: AdverseEventVersion,
    registry: rules.ProtocolRegistry,
    *,
    on: date,
) -> list[dict[str, Any]]:
    patient = session.get(Patient, case.patient_id)
    assert patient is not None
    started_by: ColumnElement[bool] = col(Assessment.reason).contains(
        f"(adverse event {case.case_id})"
    )
    result = _source_result(version.source)
    if result is not None:  # the reports the result that opened the case started itself
        rule, occurrence = result
        started_by = or_(
            started_by, col(Assessment.reason).contains(f" of {rule} #{occurrence} on ")
        )
    rows = session.execute(
        select(Assessment)
        .where(
            col(Assessment.patient_id) == case.patient_id,
            col(Assessment.category).in_(sorted(registry.reporting_categories())),
            started_by,
        )
        .order_by(col(Assessment.due_on), col(Assessment.assessment))
    ).scalars()
    return [
        {
            "key": assessment_key(
                patient.study_id, row.infusion_number, row.assessment, row.occurrence
            ),
            "assessment": row.assessment,
            "name": assessment_name(
                registry, row.protocol_id, row.protocol_version, row.assessment
            ),
            "due": row.due_on.isoformat(),
            "status": row.status,
            "overdue": row.status == "pending" and row.window_end < on,
            "performed_on": row.performed_on.isoformat() if row.performed_on else None,
            "status_reason": row.status_reason,
        }
        for row in rows
    ]

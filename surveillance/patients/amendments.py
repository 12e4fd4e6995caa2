"""Moving enrolled patients to a new version of their protocol (an amendment)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlmodel import Session, col

import rules
from surveillance.calendar.sync import CalendarChange, StoredAssessment, rematerialize
from surveillance.kit import audit
from surveillance.protocols.registry import assessment_name, get_protocol
from surveillance.records.patients import Assessment, AssessmentStatus, Patient, PatientStatus
from surveillance.records.sites import get_site


@dataclass(frozen=True)
class PatientAmendment:
    study_id: str
    from_version: str
    change: CalendarChange


def amend(
    session: Session,
    *,
    protocol_id: str,
    to_version: str,
    registry: rules.ProtocolRegistry,
    actor: str,
    now: datetime,
    apply: bool,
) -> list[PatientAmendment]:
    """The calendar change for every active patient on another version; applied only if
    ``apply``."""
    target = get_protocol(registry, protocol_id, to_version)
    patients = session.execute(
        select(Patient)
        .where(
            col(Patient.protocol_id) == protocol_id,
            col(Patient.protocol_version) != to_version,
            col(Patient.status) == PatientStatus.active.value,
        )
        .order_by(col(Patient.study_id))
    ).scalars()
    amendments = []
    for patient in patients:
        cause = f"protocol {protocol_id} amended from {patient.protocol_version} to {to_version}"
        from_version = patient.protocol_version
        change = rematerialize(
            session, patient, target, cause=cause, actor=actor, now=now, dry_run=not apply
        )
        not_required: list[str] = []
        if apply:
            today = get_site(session, patient.site_id).today(now)
            not_required = _not_required_if_past(session, patient, change, cause, today, now)
            patient.protocol_version = to_version
            session.add(patient)
            audit.record(
                session,
                actor=actor,
                action="protocol_move",
                entity="patient",
                entity_key=patient.study_id,
                patient_id=patient.id,
                reason=cause,
                old={"protocol_version": from_version},
                new={
                    "protocol_version": to_version,
                    "summary": change.summary(),
                    "not_required": not_required,
                },
                at=now,
            )
        amendments.append(PatientAmendment(patient.study_id, from_version, change))
    return amendments


def _not_required_if_past(
    session: Session,
    patient: Patient,
    change: CalendarChange,
    cause: str,
    today: date,
    now: datetime,
) -> list[str]:
    """Rows the new version adds whose window closed before today (a pre-infusion sample
    of a patient infused years ago): never owed, so not left pending and overdue at once;
    marked not required, with the amendment as the reason. Their keys."""
    past = [
        (plan.infusion, plan.assessment, plan.occurrence)
        for plan in change.added
        if plan.window_end < today
    ]
    if not past:
        return []
    reason = f"{cause} on {today}, after its window had closed: not owed retroactively"
    for infusion, assessment, occurrence in past:
        session.execute(
            update(Assessment)
            .where(
                col(Assessment.patient_id) == patient.id,
                col(Assessment.infusion_number) == infusion,
                col(Assessment.assessment) == assessment,
                col(Assessment.occurrence) == occurrence,
                col(Assessment.status) == AssessmentStatus.pending.value,
            )
            .values(
                status=AssessmentStatus.not_required.value,
                status_reason=reason,
                version=Assessment.version + 1,
                updated_at=now,
            )
        )
    return [f"{patient.study_id}:{i}:{a}:{o}" for i, a, o in past]


def describe(
    item: PatientAmendment,
    *,
    protocol_id: str,
    to_version: str,
    registry: rules.ProtocolRegistry,
    today: date,
) -> list[str]:
    """What one patient gains and loses, for a person to read: per assessment (its name),
    the rows added (those whose window has already closed marked ``past``: they are
    marked not required when applied), cancelled
    (with the old name) and moved (from -> to); relabelled rows are counted only."""
    change = item.change
    lines = [f"{item.study_id}: {item.from_version} -> {to_version}: {change.summary()}"]

    def name(version: str, assessment: str) -> str:
        return assessment_name(registry, protocol_id, version, assessment)

    added: dict[str, list[rules.PlannedAssessment]] = defaultdict(list)
    for plan in change.added:
        added[plan.assessment].append(plan)
    if added:
        lines.append("  gains:")
    for assessment, plans in added.items():
        past = sum(1 for p in plans if p.window_end < today)
        dates = ", ".join(
            p.due.isoformat() + (" (past)" if p.window_end < today else "") for p in plans
        )
        note = f"; {past} past their window: not required" if past else ""
        lines.append(f"    + {assessment}: {plans[0].name} [{len(plans)} row(s){note}]")
        lines.append(f"        {dates}")
    cancelled: dict[str, list[StoredAssessment]] = defaultdict(list)
    for row in change.cancelled:
        cancelled[row.assessment].append(row)
    if cancelled:
        lines.append("  loses (pending rows cancelled):")
    for assessment, rows in cancelled.items():
        dates = ", ".join(row.due_on.isoformat() for row in rows)
        old = name(rows[0].protocol_version, assessment)
        lines.append(f"    - {assessment}: {old} [{len(rows)} row(s)]")
        lines.append(f"        {dates}")
    if change.moved:
        lines.append("  moves:")
    for row, plan in change.moved:
        lines.append(
            f"    ~ {row.assessment} #{row.occurrence}: {plan.name}: due "
            f"{row.due_on.isoformat()} -> {plan.due.isoformat()}, window "
            f"{row.window_start.isoformat()}..{row.window_end.isoformat()} -> "
            f"{plan.window_start.isoformat()}..{plan.window_end.isoformat()}"
        )
    if change.reinstated:
        lines.append("  reinstates:")
    for row, plan in change.reinstated:
        lines.append(f"    * {row.assessment} #{row.occurrence}: {plan.name}: due {plan.due}")
    if change.relabelled:
        renamed = sorted({plan.assessment for _, plan in change.relabelled})
        lines.append(
            f"  relabelled (same dates, now version {to_version}): {len(change.relabelled)} "
            f"row(s) of {len(renamed)} assessment(s)"
        )
    return lines

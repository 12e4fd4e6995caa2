"""Moving enrolled patients to a new version of their protocol (an amendment)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

import rules
from surveillance.calendar.sync import CalendarChange, rematerialize
from surveillance.kit import audit
from surveillance.protocols.registry import get_protocol
from surveillance.records.patients import Patient, PatientStatus


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
        if apply:
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
                new={"protocol_version": to_version, "summary": change.summary()},
                at=now,
            )
        amendments.append(PatientAmendment(patient.study_id, from_version, change))
    return amendments

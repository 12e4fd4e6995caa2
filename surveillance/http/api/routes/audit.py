"""A patient's audit trail: every change, who made it, when, why, old and new values."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.http.api.schemas import AuditEntryPublic
from surveillance.http.deps import CurrentUser, State, visible_patient
from surveillance.kit import audit

router = APIRouter(prefix="/patients", tags=["patients"])


@router.get("/{study_id}/audit", response_model=list[AuditEntryPublic])
def read_audit_trail(study_id: str, state: State, user: CurrentUser) -> list[dict[str, Any]]:
    """Oldest first; each row's hash chains it to the one before (tamper-evident)."""
    user.require_role(
        *CLINICAL_ROLES, to="read a patient's audit trail"
    )  # before the lookup, as this path always has
    with state.read() as session:
        patient = visible_patient(session, user, study_id)
        assert patient.id is not None
        return [
            audit.entry_dict(entry) for entry in audit.patient_trail(session, patient_id=patient.id)
        ]

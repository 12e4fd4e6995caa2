"""A patient's audit trail: every change, who made it, when, why, old and new values."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.errors import NotFound
from surveillance.http.api.schemas import AuditEntryPublic
from surveillance.http.deps import CurrentUser, State
from surveillance.kit import audit
from surveillance.records.queries import get_patient

router = APIRouter(prefix="/patients", tags=["patients"])


@router.get("/{study_id}/audit", response_model=list[AuditEntryPublic])
def read_audit_trail(study_id: str, state: State, user: CurrentUser) -> list[dict[str, Any]]:
    """Oldest first; each row's hash chains it to the one before (tamper-evident)."""
    user.require_role(*CLINICAL_ROLES)
    with state.read() as session:
        patient = get_patient(session, study_id)
        if not user.works_at(patient.site_id):
            raise NotFound(f"no patient with study id {study_id!r}")
        assert patient.id is not None
        return [
            audit.entry_dict(entry) for entry in audit.patient_trail(session, patient_id=patient.id)
        ]

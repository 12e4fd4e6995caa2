"""A patient's whole audit trail, newest first, 100 rows a page (the patient page shows
the newest 50). Pages are keyset pages: ``?before=<id>`` (older) and ``?after=<id>`` (newer)
read an index range however long the trail; the same people see it as see the patient."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.http.deps import State, visible_patient
from surveillance.http.web.audit_trail import audit_row
from surveillance.http.web.render import NO_SUCH_PATIENT, PageRoute, render
from surveillance.http.web.session import CurrentWebUser
from surveillance.kit.audit import patient_trail_count, patient_trail_page
from surveillance.kit.i18n import N_

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE_SIZE = 100


@router.get("/patients/{study_id}/audit")
def patient_audit_page(
    request: Request,
    study_id: str,
    state: State,
    user: CurrentWebUser,
    before: str = "",
    after: str = "",
) -> Response:
    user.principal.require_role(*CLINICAL_ROLES, to=N_("open a patient's page"))
    with state.read() as session:
        patient = visible_patient(session, user.principal, study_id, missing=NO_SUCH_PATIENT)
        assert patient.id is not None
        page = patient_trail_page(
            session,
            patient_id=patient.id,
            size=PAGE_SIZE,
            before=_cursor(before),
            after=None if _cursor(before) is not None else _cursor(after),
        )
        count = patient_trail_count(session, patient_id=patient.id)
    context: dict[str, Any] = {
        "title": N_("Audit trail · patient {study_id}"),
        "title_args": {"study_id": patient.study_id},
        "study_id": patient.study_id,
        "audit": [audit_row(entry) for entry in page.entries],
        "audit_count": count,
        "newer": page.newer,
        "older": page.older,
        "first_page": page.newer is not None,
    }
    return render(request, "patient_audit.html", context, user=user)


def _cursor(value: str) -> int | None:
    """A row id from the query string; anything else is the first page."""
    return int(value) if value.isdigit() and len(value) < 19 else None

"""Who may comes before what was sent: role and site are checked before If-Match, and a
patient outside the caller's scope is 404 whether it exists or not (no existence oracle)."""

from __future__ import annotations

import pytest
from support.api_support import Api

CRS = {
    "onset_date": "2024-02-02",
    "awareness_date": "2024-02-02",
    "term": "Cytokine release syndrome",
    "category": "crs",
    "grade": 1,
    "grade_scale": "astct",
    "serious": False,
    "relatedness": "related",
    "expected": True,
    "outcome": "recovering",
}
STATUS = {"status": "withdrawn", "date": "2026-11-20", "reason": "consent withdrawn"}


def test_a_nurse_changing_a_status_without_if_match_is_403_not_428(api: Api) -> None:
    api.enroll()
    response = api.post("/api/v1/patients/ROM-101/status", STATUS, role="nurse")
    assert response.status_code == 403
    assert (
        api.post("/api/v1/patients/ROM-101/status", STATUS, role="investigator").status_code == 428
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/patients/{id}"),
        ("GET", "/api/v1/patients/{id}/calendar"),
        ("GET", "/api/v1/patients/{id}/adverse-events"),
        ("POST", "/api/v1/patients/{id}/status"),
        ("POST", "/api/v1/patients/{id}/infusions"),
    ],
)
@pytest.mark.parametrize("role", ["pharmacovigilance", "nurse"])
def test_an_existing_patient_out_of_scope_answers_as_a_missing_one(
    api: Api, method: str, path: str, role: str
) -> None:
    """Pharmacovigilance sees no patient; a Rome nurse no Erlangen patient."""
    existing = (
        api.enroll(study_id="ERL-101", site_id="Erlangen") if role == "nurse" else api.enroll()
    )
    answers = []
    for study_id in (existing, "XXX-999"):
        url = path.format(id=study_id)
        if method == "GET":
            response = api.get(url, role=role)
        else:
            body = STATUS if url.endswith("status") else {"infusion_date": "2026-11-01"}
            response = api.post(url, body, role=role)
        answers.append((response.status_code, response.json()["detail"].replace(study_id, "?")))
    assert answers[0] == answers[1]
    # no nurse or pharmacovigilance changes a status, at any site: 403 for every study id
    assert answers[0][0] == (403 if path.endswith("status") else 404)


def test_pharmacovigilance_amending_a_case_without_if_match_is_403_not_428(api: Api) -> None:
    api.enroll()
    created = api.post("/api/v1/patients/ROM-101/adverse-events", CRS, role="nurse")
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]
    response = api.post(
        f"/api/v1/adverse-events/{case_id}/nullify",
        {"reason": "entered in error"},
        role="pharmacovigilance",
    )
    assert response.status_code == 403

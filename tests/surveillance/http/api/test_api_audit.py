"""A patient's audit trail over HTTP: every change, with who, why, old and new values."""

from __future__ import annotations

from support.api_support import Api

from surveillance.kit import audit
from surveillance.kit.db import read_session
from surveillance.records.queries import get_patient


def test_the_trail_lists_every_change_in_order(api: Api) -> None:
    api.enroll()
    key = "ROM-101:1:rcl_test:1"
    body = {"outcome": "completed", "date": "2024-04-30", "result": "negative"}
    assert api.post(f"/api/v1/assessments/{key}/outcome", body, if_match='"1"').status_code == 200
    booking = {"date": "2026-12-10", "reason": "school holiday"}
    path = "/api/v1/assessments/ROM-101:1:neurodevelopment:2/reschedule"
    assert api.post(path, booking, if_match='"1"').status_code == 200
    change = {"status": "withdrawn", "date": "2026-11-20", "reason": "family moved abroad"}
    assert (
        api.post("/api/v1/patients/ROM-101/status", change, "investigator", '"1"').status_code
        == 200
    )

    trail = api.get("/api/v1/patients/ROM-101/audit").json()
    assert [(row["action"], row["actor"]) for row in trail] == [
        ("enroll", "test"),
        ("record_outcome", "nurse@rome.example"),
        ("reschedule", "nurse@rome.example"),
        *[(row["action"], "investigator@rome.example") for row in trail[3:]],
    ]
    outcome = trail[1]
    assert outcome["key"] == key
    assert outcome["old"]["status"] == "pending"
    assert outcome["new"] == {
        "status": "completed",
        "performed_on": "2024-04-30",
        "result": "negative",
        "note": None,
        "result_as_entered": None,
        "status_reason": None,
        "protocol_deviation": False,
    }
    assert trail[2]["reason"] == "school holiday"
    assert trail[2]["new"] == {"appointment_on": "2026-12-10"}
    assert any(row["reason"] == "family moved abroad" for row in trail[3:])
    assert all(row["at"].endswith(("+00:00", "Z")) for row in trail)
    with read_session(api.engine) as session:
        assert audit.verify_chain(session) == []
        patient_id = get_patient(session, "ROM-101").id
        assert patient_id is not None
        stored = [entry.hash for entry in audit.patient_trail(session, patient_id=patient_id)]
    assert [row["hash"] for row in trail] == stored


def test_another_sites_trail_is_not_found(api: Api) -> None:
    api.enroll(study_id="ERL-101", site_id="Erlangen")
    response = api.get("/api/v1/patients/ERL-101/audit")
    assert response.status_code == 404
    assert response.json()["detail"] == api.get("/api/v1/patients/ERL-999/audit").json()[
        "detail"
    ].replace("ERL-999", "ERL-101")

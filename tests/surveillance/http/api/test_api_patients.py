"""Enrolment over HTTP, and the problem details every kind of bad input gets."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from support.api_support import CAR_T, TODAY, Api

from surveillance.kit.db import read_session
from surveillance.records.patients import Patient

ENROL = "/api/v1/patients"


def _body(**overrides: Any) -> dict[str, Any]:
    body = {
        "study_id": "ROM-009",
        "site": "Rome",
        "birth_date": "2014-03-01",
        "sex": "F",
        "diagnosis": "sle",
        "protocol": CAR_T,
        "infusion_date": "2024-01-31",
    }
    return {**body, **overrides}


def _patients(api: Api) -> int:
    with read_session(api.engine) as session:
        return session.execute(select(func.count()).select_from(Patient)).scalar_one()


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    assert problem["type"].startswith("https://")
    return problem


class TestEnrol:
    def test_created_with_the_patient_and_its_calendar(self, api: Api) -> None:
        response = api.post(ENROL, _body())
        assert response.status_code == 201, response.text
        assert response.headers["location"] == "/api/v1/patients/ROM-009"
        assert response.headers["etag"] == '"1"'
        body = response.json()
        assert body["patient"]["study_id"] == "ROM-009"
        assert body["patient"]["infusions"] == ["2024-01-31"]
        calendar = {row["key"]: row for row in body["calendar"]}
        rcl = calendar["ROM-009:1:rcl_test:1"]
        assert (rcl["due"], rcl["window_start"], rcl["window_end"]) == (
            "2024-04-30",
            "2024-04-16",
            "2024-05-14",
        )
        assert rcl["state"] == "overdue"
        assert rcl["status"] == "pending"
        assert {row["state"] for row in body["calendar"]} >= {"overdue", "upcoming"}

    def test_each_calendar_row_says_what_its_result_may_be(self, api: Api) -> None:
        calendar = {row["assessment"]: row for row in api.post(ENROL, _body()).json()["calendar"]}
        rcl = calendar["rcl_test"]["result_type"]
        assert rcl["type"] == "coded"
        assert "positive" in [value["code"] for value in rcl["values"]]
        assert calendar["immunoglobulins"]["result_type"]["accepts"] == ["mg/dL", "g/L"]
        assert calendar["ltfu_exam"]["result_type"] is None  # a free-text remark

    def test_the_stored_calendar_reads_back_the_same(self, api: Api) -> None:
        created = api.post(ENROL, _body()).json()["calendar"]
        read = api.get("/api/v1/patients/ROM-009/calendar").json()
        assert read == created

    def test_enrolling_twice_is_a_conflict(self, api: Api) -> None:
        api.post(ENROL, _body())
        problem = _problem(api.post(ENROL, _body()), 409)
        assert "ROM-009" in problem["detail"]
        assert _patients(api) == 1


class TestBadInput:
    """Each is refused with a 422 problem saying what is wrong, and nothing is written."""

    @pytest.mark.parametrize(
        ("overrides", "says"),
        [
            ({"infusion_date": "2027-01-05"}, "infusion date 2027-01-05 is in the future"),
            ({"infusion_date": "2013-12-31"}, "before the birth date 2014-03-01"),
            ({"protocol": "no-such-protocol"}, "unknown protocol 'no-such-protocol'"),
            ({"diagnosis": "flu"}, "diagnosis 'flu' is not covered"),
            ({"birth_date": "2014-02-30"}, "birth_date"),
            ({"infusion_date": "yesterday"}, "infusion_date"),
            ({"sex": "X"}, "sex"),
            ({"study_id": "Maria Rossi"}, "not a pseudonymous id"),
            ({"nickname": "Mary"}, "nickname"),
        ],
    )
    def test_refused_with_a_clear_detail(
        self, api: Api, overrides: dict[str, Any], says: str
    ) -> None:
        problem = _problem(api.post(ENROL, _body(**overrides)), 422)
        assert says in problem["detail"]
        assert _patients(api) == 0

    def test_a_missing_field_is_named(self, api: Api) -> None:
        body = _body()
        del body["infusion_date"]
        problem = _problem(api.post(ENROL, body), 422)
        assert problem["errors"] == [{"field": "infusion_date", "message": "Field required"}]

    def test_malformed_json(self, api: Api) -> None:
        response = api.client.post(
            ENROL,
            content=b'{"study_id": "ROM-009", ',
            headers={**api.headers("nurse"), "Content-Type": "application/json"},
        )
        problem = _problem(response, 422)
        assert "JSON" in problem["detail"]

    def test_an_unknown_site_is_not_found(self, api: Api) -> None:
        problem = _problem(api.post(ENROL, _body(site="Atlantis"), role="admin"), 404)
        assert "Atlantis" in problem["detail"]

    def test_a_bad_calendar_date_is_refused(self, api: Api) -> None:
        api.post(ENROL, _body())
        problem = _problem(api.get("/api/v1/patients/ROM-009/calendar", on="2026-13-01"), 422)
        assert problem["errors"][0]["field"] == "query.on"

    def test_an_unknown_patient_is_not_found(self, api: Api) -> None:
        _problem(api.get("/api/v1/patients/ROM-404"), 404)

    def test_the_future_is_judged_at_the_site(self, api: Api) -> None:
        problem = _problem(
            api.post(ENROL, _body(infusion_date=(TODAY.replace(day=26)).isoformat())), 422
        )
        assert f"today at Rome is {TODAY}" in problem["detail"]


class TestList:
    def test_pages_by_study_id_with_a_link_to_the_next(self, api: Api) -> None:
        for number in range(5):
            api.enroll(study_id=f"ROM-{300 + number}")
        api.enroll(study_id="ERL-300", site_id="Erlangen")
        first = api.get("/api/v1/patients", limit=3)
        assert [p["study_id"] for p in first.json()] == ["ROM-300", "ROM-301", "ROM-302"]
        assert first.headers["link"] == '</api/v1/patients?limit=3&after=ROM-302>; rel="next"'
        second = api.client.get(
            first.headers["link"][1:].split(">")[0], headers=api.headers("nurse")
        )
        assert [p["study_id"] for p in second.json()] == ["ROM-303", "ROM-304"]
        assert "link" not in second.headers
        everyone = api.get("/api/v1/patients", role="admin").json()
        assert everyone[0]["study_id"] == "ERL-300"
        assert everyone[0]["infusions"] == ["2024-01-31"]

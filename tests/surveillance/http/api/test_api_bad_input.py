"""Issue 16, "dates and numbers that end in a 500" and "text input": every one of them is
now refused (422, or 404 where the URL names what cannot exist) on SQLite and PostgreSQL,
with the field it is about; nothing is written.

Each request below answered 500 (or was accepted) on main before kit.text and kit.bounds.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from support.api_support import CAR_T, PATIENT, Api
from support.live_api import SERIOUS_CASE

from surveillance.kit.db import read_session
from surveillance.records.patients import Patient

ENROLMENT = {
    "study_id": "ROM-900",
    "site": "Rome",
    "birth_date": "2010-01-01",
    "sex": "F",
    "diagnosis": "sle",
    "protocol": CAR_T,
    "infusion_date": "2020-01-02",
}
CALENDAR = f"/api/v1/protocols/{CAR_T}/calendar"
STUDY = PATIENT["study_id"]


@pytest.fixture
def enrolled(api: Api) -> Api:
    api.enroll()
    return api


def _post(api: Api, path: str, body: dict[str, Any], role: str = "investigator") -> Any:
    # json.dumps escapes a lone surrogate as \ud800, as a client in another language sends it.
    headers = {**api.headers(role), "Content-Type": "application/json"}
    return api.client.post(path, content=json.dumps(body), headers=headers)


def _patients(api: Api) -> int:
    with read_session(api.engine) as session:
        return len(session.execute(select(Patient)).all())


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/sites/Rome/due", {"on": "9999-12-31"}, "on"),
        ("/api/v1/sites/Rome/due", {"on": "0001-01-01"}, "on"),
        ("/api/v1/sites/Rome/due", {"on": "2060-01-01"}, "on"),  # beyond today + 20 years
        ("/api/v1/sites/Rome/due", {"from": "9999-12-31"}, "from"),
        ("/api/v1/sites/Rome/due", {"to": "0001-01-01"}, "to"),
        (
            "/api/v1/sites/Rome/due",
            {"cursor": "b3ZlcmR1ZXwyMDI2LTAxLTAxfDk5OTk5OTk5OTk5OTk5OTk5OTk5"},
            "cursor",
        ),
        (CALENDAR, {"infusion": "9999-12-31"}, "infusion"),
        (CALENDAR, {"infusion": "0001-01-01"}, "infusion"),
        (CALENDAR, {"infusion": "1980-01-01"}, "infusion"),
        (CALENDAR, {"infusion": "2020-01-01", "birth": "0001-01-01"}, "birth"),
        (CALENDAR, {"infusion": "2020-01-01", "diagnosis": "sle\x00"}, "diagnosis"),
        (f"/api/v1/patients/{STUDY}/calendar", {"on": "9999-12-31"}, "on"),
        (f"/api/v1/patients/{STUDY}/calendar", {"on": "1900-01-01"}, "on"),
        ("/api/v1/patients", {"after": "ROM\x1b[2J"}, "after"),
    ],
)
def test_an_impossible_date_or_text_in_the_query_is_a_422_naming_it(
    enrolled: Api, path: str, params: dict[str, str], field: str
) -> None:
    response = enrolled.get(path, role="admin", **params)
    assert response.status_code == 422, response.text
    body = response.json()
    named = {body.get("field"), *(e["field"] for e in body.get("errors", []))}
    assert any(field == name or str(name).endswith(field) for name in named), body


@pytest.mark.parametrize(
    "path",
    ["/api/v1/patients/ROM%00101", "/api/v1/sites/Ro%0Ame/due", "/api/v1/patients/ROM%E2%80%AE1"],
)
def test_a_control_character_in_the_path_is_refused_before_the_database(
    enrolled: Api, path: str
) -> None:
    response = enrolled.get(path, role="admin")
    assert response.status_code in (404, 422), response.text


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"birth_date": "0001-01-01", "infusion_date": "0001-01-02"}, "birth_date"),
        ({"birth_date": "1899-12-31"}, "birth_date"),
        ({"infusion_date": "0001-01-02"}, "infusion_date"),
        ({"infusion_date": "1989-12-31", "birth_date": "1980-01-01"}, "infusion_date"),
        ({"infusion_date": "9999-12-31"}, "infusion_date"),
        ({"study_id": "ROM-\ud800"}, "study_id"),
        ({"study_id": "ROM-900\n"}, "study_id"),
        ({"site": "Ro\x00me"}, "site"),
        ({"diagnosis": "sle\u202e"}, "diagnosis"),
    ],
)
def test_an_enrolment_with_an_impossible_date_or_text_is_a_422_and_writes_nothing(
    api: Api, overrides: dict[str, str], field: str
) -> None:
    response = _post(api, "/api/v1/patients", {**ENROLMENT, **overrides})
    assert response.status_code == 422, response.text
    assert field in response.text
    assert _patients(api) == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"narrative": "fever\ud800"}, "narrative"),
        ({"narrative": "fever\x00"}, "narrative"),
        ({"narrative": "fever \x1b[31mred"}, "narrative"),
        ({"term": "Pneumonia\r\nBcc: x@example.org"}, "term"),
        ({"term": "Pneumonia\x07"}, "term"),
        ({"term": "\u202eainomuenP"}, "term"),
        ({"term": "Pneu\ud800monia"}, "term"),
        ({"onset_date": "0001-01-01"}, "onset_date"),
        ({"awareness_date": "9999-12-31"}, "awareness_date"),
    ],
)
def test_an_adverse_event_with_a_control_character_or_surrogate_is_a_422_naming_the_field(
    enrolled: Api, overrides: dict[str, str], field: str
) -> None:
    response = _post(
        enrolled, f"/api/v1/patients/{STUDY}/adverse-events", {**SERIOUS_CASE, **overrides}
    )
    assert response.status_code == 422, response.text
    assert field in response.text
    assert enrolled.get(f"/api/v1/patients/{STUDY}/adverse-events").json() == []


def test_a_narrative_keeps_its_line_breaks_and_tabs(enrolled: Api) -> None:
    narrative = "Day 1:\tfever 39.2\r\nDay 2:\tadmitted\nمريض \u202bعربي\u202c"
    response = _post(
        enrolled,
        f"/api/v1/patients/{STUDY}/adverse-events",
        {**SERIOUS_CASE, "narrative": narrative},
    )
    assert response.status_code == 201, response.text
    assert response.json()["current"]["narrative"] == narrative


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "withdrawn", "date": "2026-11-20", "reason": "moved\x00"}, "reason"),
        ({"status": "withdrawn", "date": "0001-01-01", "reason": "moved"}, "date"),
        (
            {"status": "transferred", "date": "2026-11-20", "reason": "x", "to_site": "Erl\ud800"},
            "to_site",
        ),
    ],
)
def test_a_status_change_with_bad_text_or_date_is_a_422(
    enrolled: Api, body: dict[str, str], field: str
) -> None:
    response = _post(enrolled, f"/api/v1/patients/{STUDY}/status", body)
    assert response.status_code == 422, response.text
    assert field in response.text


def test_an_acknowledgement_version_beyond_the_column_is_a_422(enrolled: Api) -> None:
    body = {"case_id": "ROM-101-AE01", "version": 2**63, "status": "AA"}
    response = _post(enrolled, "/api/v1/feeds/adverse-events/acks", body, "pharmacovigilance")
    assert response.status_code in (404, 422), response.text


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/feeds/adverse-events", {"cursor": "9" * 5000}),  # more digits than int() reads
        ("/api/v1/feeds/adverse-events", {"cursor": "²"}),  # a digit to isdigit, not to int
        ("/api/v1/assessments/ROM-101:1:rcl_test:" + "1" * 5000, {}),
    ],
)
def test_a_number_no_column_can_hold_is_refused(
    enrolled: Api, path: str, params: dict[str, str]
) -> None:
    response = enrolled.get(
        path, role="pharmacovigilance" if "feeds" in path else "nurse", **params
    )
    assert response.status_code in (404, 422), response.text


@pytest.mark.parametrize("tag", ['"²"', '"' + "9" * 5000 + '"', '"99999999999999999999"'])
def test_an_if_match_that_is_no_version_is_a_412(enrolled: Api, tag: str) -> None:
    response = enrolled.client.post(
        f"/api/v1/patients/{STUDY}/status",
        json={"status": "withdrawn", "date": "2026-11-20", "reason": "moved"},
        # Latin-1 on the wire, as HTTP headers are: b"\xb2" is read as "²".
        headers={**enrolled.headers("investigator"), "If-Match": tag.encode("latin-1")},
    )
    assert response.status_code == 412, response.text

"""Recording adverse events through the API (issue 5 §1–§3): versions, nullification,
validation with clear errors, and what a case does to the calendar and the patient."""

from __future__ import annotations

from typing import Any

import pytest
from support.api_support import Api

from surveillance.kit.audit import verify_chain
from surveillance.kit.db import read_session

CASES = "/api/v1/patients/ROM-101/adverse-events"
CRS: dict[str, Any] = {
    "onset_date": "2024-02-02",
    "end_date": "2024-02-05",
    "awareness_date": "2024-02-02",
    "term": "Cytokine release syndrome",
    "category": "crs",
    "grade": 1,
    "grade_scale": "astct",
    "serious": False,
    "relatedness": "related",
    "expected": True,
    "outcome": "recovered",
}
INFECTION: dict[str, Any] = {
    "onset_date": "2026-11-20",
    "awareness_date": "2026-11-21",
    "term": "Pneumonia",
    "meddra_code": "10035664",
    "meddra_version": "27.1",
    "category": "infection",
    "grade": 3,
    "grade_scale": "ctcae_v5",
    "serious": True,
    "seriousness_criteria": ["hospitalization"],
    "relatedness": "possibly_related",
    "expected": False,
    "outcome": "recovering",
    "narrative": "Fever and consolidation on day 1,025; admitted for IV antibiotics.",
}


def record(api: Api, body: dict[str, Any], role: str = "nurse") -> dict[str, Any]:
    response = api.post(CASES, body, role=role)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def calendar_keys(api: Api) -> dict[str, dict[str, Any]]:
    rows = api.get("/api/v1/patients/ROM-101/calendar").json()
    return {row["key"]: row for row in rows}


class TestRecording:
    def test_a_case_has_a_stable_id_version_1_and_an_etag(self, api: Api) -> None:
        api.enroll()
        response = api.post(CASES, CRS)
        assert response.status_code == 201
        body = response.json()
        assert (body["case_id"], body["version"], body["status"]) == ("ROM-101-AE01", 1, "open")
        assert response.headers["ETag"] == '"1"'
        assert response.headers["Location"] == "/api/v1/adverse-events/ROM-101-AE01"
        current = body["current"]
        assert current["grade"] == 1
        assert current["grade_scale"] == "astct"
        assert current["reporter_qualification"] == "other_health_professional"  # a nurse
        assert current["age_at_onset_years"] == 9
        assert "birth_date" not in current
        assert body["reporting_deadlines"] == []  # not serious: no clock
        assert record(api, {**CRS, "term": "Fever"})["case_id"] == "ROM-101-AE02"

    def test_an_investigator_reports_as_a_physician(self, api: Api) -> None:
        api.enroll()
        body = record(api, CRS, role="investigator")
        assert body["current"]["reporter_qualification"] == "physician"

    def test_it_reads_back_the_same_and_lists(self, api: Api) -> None:
        api.enroll()
        created = record(api, INFECTION)
        read = api.get("/api/v1/adverse-events/ROM-101-AE01")
        assert read.status_code == 200
        assert read.headers["ETag"] == '"1"'
        assert read.json()["current"] == created["current"]
        listed = api.get("/api/v1/adverse-events", site="Rome").json()
        assert [(c["case_id"], c["serious"], c["term"]) for c in listed] == [
            ("ROM-101-AE01", True, "Pneumonia")
        ]
        assert [c["case_id"] for c in api.get(CASES).json()] == ["ROM-101-AE01"]

    def test_onset_before_the_infusion_is_flagged_pre_existing(self, api: Api) -> None:
        api.enroll()
        body = record(api, {**CRS, "onset_date": "2024-01-20", "awareness_date": "2024-01-20",
                            "end_date": None})  # fmt: skip
        assert body["current"]["pre_existing"] is True
        assert record(api, CRS)["current"]["pre_existing"] is False

    def test_cases_move_with_a_transferred_patient(self, api: Api) -> None:
        api.enroll()
        record(api, INFECTION)
        version = api.get("/api/v1/patients/ROM-101").headers["ETag"]
        moved = api.post("/api/v1/patients/ROM-101/status",
                         {"status": "transferred", "date": "2026-11-24", "reason": "moved",
                          "to_site": "Erlangen"}, role="admin", if_match=version)  # fmt: skip
        assert moved.status_code == 200, moved.text
        assert api.get("/api/v1/adverse-events/ROM-101-AE01").status_code == 404  # Rome nurse
        listed = api.get("/api/v1/adverse-events", role="admin", site="Erlangen").json()
        assert [c["case_id"] for c in listed] == ["ROM-101-AE01"]


class TestValidation:
    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"grade": 5, "grade_scale": "ctcae_v5"}, "grade 5 means death"),
            ({"end_date": "2024-02-01"}, "end_date: 2024-02-01 is before the onset"),
            ({"awareness_date": "2024-02-01"}, "cannot learn of an event before it starts"),
            ({"onset_date": "2026-11-26"}, "is in the future"),
            ({"onset_date": "2010-01-01", "awareness_date": "2010-01-01"}, "before the patient"),
            ({"category": "infection"}, "ASTCT grades CRS and ICANS only"),
            ({"serious": True}, "needs at least one criterion"),
            ({"seriousness_criteria": ["hospitalization"]}, "criteria were given"),
            ({"meddra_code": "123"}, "not an 8-digit MedDRA code"),
            ({"meddra_code": "10052015"}, "meddra_version: required"),
            ({"outcome": "fatal"}, "needs the criterion 'death'"),
            ({"grade_scale": None}, "say which scale"),
            ({"term": "  "}, "give the verbatim term"),
        ],
    )
    def test_refused_with_the_field_and_the_reason(
        self, api: Api, change: dict[str, Any], message: str
    ) -> None:
        api.enroll()
        response = api.post(CASES, {**CRS, **change})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert message in response.json()["detail"]
        assert api.get(CASES).json() == []  # nothing written
        trail = api.get("/api/v1/patients/ROM-101/audit").json()
        assert [e for e in trail if e["entity"] == "adverse_event"] == []

    def test_unknown_words_are_refused_by_name(self, api: Api) -> None:
        api.enroll()
        response = api.post(CASES, {**CRS, "category": "rash", "surprise": 1})
        assert response.status_code == 422
        fields = {e["field"] for e in response.json()["errors"]}
        assert fields == {"category", "surprise"}

    def test_a_fatal_case_may_not_die_before_the_infusion(self, api: Api) -> None:
        api.enroll()
        fatal = {**INFECTION, "onset_date": "2024-01-20", "awareness_date": "2024-01-21",
                 "grade": 5, "outcome": "fatal", "seriousness_criteria": ["death"]}  # fmt: skip
        response = api.post(CASES, fatal)
        assert response.status_code == 422
        assert "before the infusion" in response.json()["detail"]


class TestVersions:
    def test_a_follow_up_is_a_new_version_and_the_old_one_stays(self, api: Api) -> None:
        api.enroll()
        record(api, INFECTION)
        url = "/api/v1/adverse-events/ROM-101-AE01/versions"
        follow_up = {**INFECTION, "outcome": "recovered", "end_date": "2026-11-24"}

        assert api.post(url, follow_up).status_code == 428  # no If-Match
        assert api.post(url, follow_up, if_match='"2"').status_code == 412
        response = api.post(url, follow_up, if_match='"1"')
        assert response.status_code == 201, response.text
        assert response.headers["ETag"] == '"2"'
        body = response.json()
        assert [v["version"] for v in body["versions"]] == [1, 2]
        assert [v["outcome"] for v in body["versions"]] == ["recovering", "recovered"]
        assert body["versions"][0]["end_date"] is None  # history is not rewritten
        assert api.post(url, follow_up, if_match='"1"').status_code == 412  # stale now

    def test_last_info_date_may_not_go_back(self, api: Api) -> None:
        api.enroll()
        record(api, {**INFECTION, "last_info_date": "2026-11-24"})
        response = api.post(
            "/api/v1/adverse-events/ROM-101-AE01/versions",
            {**INFECTION, "last_info_date": "2026-11-22"},
            if_match='"1"',
        )
        assert response.status_code == 422
        assert "before the previous version's 2026-11-24" in response.json()["detail"]

    def test_every_change_is_audited_with_old_and_new_values(self, api: Api) -> None:
        api.enroll()
        record(api, INFECTION)
        api.post("/api/v1/adverse-events/ROM-101-AE01/versions",
                 {**INFECTION, "grade": 4}, if_match='"1"')  # fmt: skip
        trail = api.get("/api/v1/patients/ROM-101/audit").json()
        changes = [e for e in trail if e["entity"] == "adverse_event"]
        assert [e["action"] for e in changes] == [
            "adverse_event_created",
            "adverse_event_updated",
        ]
        assert changes[1]["old"]["grade"] == 3
        assert changes[1]["new"]["grade"] == 4
        assert changes[1]["actor"] == "nurse@rome.example"
        with read_session(api.engine) as session:
            assert verify_chain(session) == []  # in the one hash chain with everything else


class TestNullification:
    def test_nullified_with_a_reason_kept_and_readable(self, api: Api) -> None:
        api.enroll()
        record(api, INFECTION)
        url = "/api/v1/adverse-events/ROM-101-AE01/nullify"
        assert api.post(url, {"reason": ""}, if_match='"1"').status_code == 422
        response = api.post(url, {"reason": "entered for the wrong patient"}, if_match='"1"')
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["status"], body["version"]) == ("nullified", 2)
        assert body["current"]["nullify_reason"] == "entered for the wrong patient"
        assert body["versions"][0]["status"] == "open"
        # The reporting clocks it started are cancelled, with the reason.
        assert {d["status"] for d in body["reporting_deadlines"]} == {"cancelled"}
        # No further versions.
        again = api.post("/api/v1/adverse-events/ROM-101-AE01/versions", INFECTION,
                         if_match='"2"')  # fmt: skip
        assert again.status_code == 409
        assert api.get("/api/v1/adverse-events/ROM-101-AE01").json()["status"] == "nullified"


class TestCalendar:
    def test_a_serious_case_starts_its_reporting_clocks(self, api: Api) -> None:
        api.enroll()
        body = record(api, INFECTION)
        deadlines = {d["assessment"]: d for d in body["reporting_deadlines"]}
        assert deadlines["sae_sponsor_notification"]["due"] == "2026-11-22"  # 24 hours
        assert deadlines["sae_sponsor_notification"]["overdue"] is True  # today: 11-25
        assert deadlines["ind_safety_report_15_day"]["due"] == "2026-12-06"
        assert "ind_safety_report_7_day" not in deadlines
        # They are on the site's due list, as overdue and due items.
        due = api.get("/api/v1/sites/Rome/due", limit=1000).json()
        names = {item["assessment"] for item in due["items"]}
        assert {"sae_sponsor_notification", "ind_safety_report_15_day"} <= names

    def test_a_follow_up_that_makes_a_case_serious_starts_the_clock_that_day(
        self, api: Api
    ) -> None:
        api.enroll()
        mild = {**INFECTION, "grade": 2, "serious": False, "seriousness_criteria": [],
                "last_info_date": "2026-11-21"}  # fmt: skip
        assert record(api, mild)["reporting_deadlines"] == []
        worse = {**INFECTION, "last_info_date": "2026-11-24"}  # admitted: learned on 11-24
        response = api.post("/api/v1/adverse-events/ROM-101-AE01/versions", worse,
                            if_match='"1"')  # fmt: skip
        assert response.status_code == 201, response.text
        clocks = {d["assessment"]: d["due"] for d in response.json()["reporting_deadlines"]}
        assert clocks == {
            "sae_sponsor_notification": "2026-11-25",  # not 11-22: it was not serious then
            "ind_safety_report_15_day": "2026-12-09",
        }
        # Corrected to expected: the 15-day report goes; the sponsor notice stays.
        expected = {**worse, "expected": True, "last_info_date": "2026-11-25"}
        response = api.post("/api/v1/adverse-events/ROM-101-AE01/versions", expected,
                            if_match='"2"')  # fmt: skip
        states = {d["assessment"]: d["status"] for d in response.json()["reporting_deadlines"]}
        assert states == {"sae_sponsor_notification": "pending",
                          "ind_safety_report_15_day": "cancelled"}  # fmt: skip

    def test_a_life_threatening_unexpected_reaction_has_7_days(self, api: Api) -> None:
        api.enroll()
        body = record(api, {**INFECTION, "grade": 4,
                            "seriousness_criteria": ["life_threatening"]})  # fmt: skip
        assert {d["assessment"]: d["due"] for d in body["reporting_deadlines"]} == {
            "sae_sponsor_notification": "2026-11-22",
            "ind_safety_report_7_day": "2026-11-28",
            # 21 CFR 312.32(c)(2) "must also notify": the (c)(1) 15-day report stays due
            # (protocol 1.1): day 0 = 11-21, + 15 = 12-06.
            "ind_safety_report_15_day": "2026-12-06",
        }

    def test_an_expected_or_unrelated_serious_case_needs_only_the_sponsor(self, api: Api) -> None:
        api.enroll()
        for change in ({"expected": True}, {"relatedness": "not_related"}):
            body = record(api, {**INFECTION, **change})
            assert [d["assessment"] for d in body["reporting_deadlines"]] == [
                "sae_sponsor_notification"
            ]

    def test_a_new_malignancy_schedules_tumour_testing_within_30_days(self, api: Api) -> None:
        api.enroll()
        malignancy = {**INFECTION, "term": "T-cell lymphoma", "category": "malignancy",
                      "meddra_code": None, "meddra_version": None,
                      "seriousness_criteria": ["other_medically_important"]}  # fmt: skip
        body = record(api, malignancy)
        added = {a["key"].split(":")[2]: a["due"] for a in body["calendar_change"]["added"]}
        for rule in ("tumour_vector_test", "integration_site_analysis", "rcl_on_indication"):
            assert added[rule] == "2026-12-21"  # awareness 2026-11-21 + 30 days
        rows = calendar_keys(api)
        assert (
            "adverse event ROM-101-AE01"
            in rows["ROM-101:1:tumour_vector_test:2026112101"]["reason"]
        )
        # Nullified: the testing it started is cancelled again.
        api.post("/api/v1/adverse-events/ROM-101-AE01/nullify", {"reason": "not a malignancy"},
                 if_match='"1"')  # fmt: skip
        assert calendar_keys(api)["ROM-101:1:tumour_vector_test:2026112101"]["status"] == (
            "cancelled"
        )

    def test_a_fatal_case_marks_the_patient_deceased_and_keeps_the_reporting_duty(
        self, api: Api
    ) -> None:
        api.enroll()
        fatal = {**INFECTION, "end_date": "2026-11-23", "grade": 5, "outcome": "fatal",
                 "seriousness_criteria": ["death", "hospitalization"]}  # fmt: skip
        body = record(api, fatal, role="investigator")
        assert body["patient_status"] == "deceased"
        patient = api.get("/api/v1/patients/ROM-101").json()
        assert (patient["status"], patient["status_on"]) == ("deceased", "2026-11-23")
        rows = calendar_keys(api)
        states = {row["assessment"]: row["status"] for row in rows.values()}
        assert states["autopsy_vector_request"] == "pending"
        assert states["ind_safety_report_7_day"] == "pending"  # still owed after death
        future = [r for r in rows.values() if r["due"] > "2026-12-31"]
        assert future
        assert {r["status"] for r in future} == {"cancelled"}
        # The 7-day report stays on the due list although the patient died.
        items = api.get("/api/v1/sites/Rome/due", limit=1000).json()["items"]
        due = {i["assessment"] for i in items}
        assert "ind_safety_report_7_day" in due
        assert "ltfu_exam_pediatric" not in due

    def test_a_positive_rcl_result_records_a_serious_case(self, api: Api) -> None:
        api.enroll()
        key = "ROM-101:1:rcl_test:1"
        response = api.post(f"/api/v1/assessments/{key}/outcome",
                            {"outcome": "completed", "date": "2024-04-30", "result": "positive"},
                            if_match='"1"')  # fmt: skip
        assert response.status_code == 200, response.text
        [case] = api.get(CASES).json()
        assert case["serious"] is True
        detail = api.get(f"/api/v1/adverse-events/{case['case_id']}").json()
        assert detail["current"]["source"] == f"assessment {key}"
        assert {d["assessment"]: d["due"] for d in detail["reporting_deadlines"]} == {
            "rcl_positive_report": "2024-04-30",  # immediately
            "sae_sponsor_notification": "2024-05-01",
            "ind_safety_report_15_day": "2024-05-15",
        }
        rows = calendar_keys(api)
        assert "ROM-101:1:rcl_confirm:2024043001" in rows

    def test_two_positive_rcl_results_each_have_their_own_report(self, api: Api) -> None:
        api.enroll()
        for key, day in (
            ("ROM-101:1:rcl_test:1", "2024-04-30"),
            ("ROM-101:1:rcl_test:2", "2024-07-31"),
        ):
            response = api.post(f"/api/v1/assessments/{key}/outcome",
                                {"outcome": "completed", "date": day, "result": "positive"},
                                if_match='"1"')  # fmt: skip
            assert response.status_code == 200, response.text
        reports = {}
        for case in api.get(CASES).json():
            detail = api.get(f"/api/v1/adverse-events/{case['case_id']}").json()
            reports[detail["current"]["source"]] = [
                d["due"]
                for d in detail["reporting_deadlines"]
                if d["assessment"] == "rcl_positive_report"
            ]
        assert reports == {
            "assessment ROM-101:1:rcl_test:1": ["2024-04-30"],
            "assessment ROM-101:1:rcl_test:2": ["2024-07-31"],
        }

    def test_nullifying_one_of_two_same_day_cases_leaves_the_others_clock_alone(
        self, api: Api
    ) -> None:
        api.enroll()
        record(api, INFECTION)  # AE01, day 0 2026-11-21
        second = record(api, {**INFECTION, "term": "Sepsis"})  # AE02, the same day 0
        [first_notice] = [
            d["key"]
            for d in api.get("/api/v1/adverse-events/ROM-101-AE01").json()["reporting_deadlines"]
            if d["assessment"] == "sae_sponsor_notification"
        ]
        done = api.post(f"/api/v1/assessments/{first_notice}/outcome",
                        {"outcome": "completed", "date": "2026-11-22"}, if_match='"1"')  # fmt: skip
        assert done.status_code == 200, done.text
        api.post("/api/v1/adverse-events/ROM-101-AE01/nullify", {"reason": "duplicate"},
                 if_match='"1"')  # fmt: skip
        after = api.get("/api/v1/adverse-events/ROM-101-AE02").json()["reporting_deadlines"]
        notices = [d for d in after if d["assessment"] == "sae_sponsor_notification"]
        assert [(d["key"], d["status"]) for d in notices] == [
            (next(d["key"] for d in second["reporting_deadlines"]
                  if d["assessment"] == "sae_sponsor_notification"), "pending")
        ]  # fmt: skip
        assert notices[0]["key"] != first_notice  # still its own, still owed

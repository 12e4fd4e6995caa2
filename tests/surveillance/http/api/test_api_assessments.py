"""Recording outcomes and booking visits over HTTP: calendar changes, deviations, If-Match."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select
from support.api_support import Api

from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session
from surveillance.records.patients import OutcomeRecord

# ROM-101, infused 2024-01-31: the first-year RCL tests are due at months 3, 6 and 12.
RCL = ["ROM-101:1:rcl_test:1", "ROM-101:1:rcl_test:2", "ROM-101:1:rcl_test:3"]
RCL_DUE = ["2024-04-30", "2024-07-31", "2025-01-31"]
# Year-3 neurodevelopment screen: due 2027-01-31, window 2026-12-02 to 2027-04-01.
NEURO = "ROM-101:1:neurodevelopment:2"


def _path(key: str, action: str = "") -> str:
    return f"/api/v1/assessments/{key}" + (f"/{action}" if action else "")


def _completed(on: str, result: str | None = None) -> dict[str, Any]:
    return {"outcome": "completed", "date": on, **({"result": result} if result else {})}


def _history(api: Api) -> tuple[int, int]:
    """(outcome rows, audit rows): what a refused update must leave alone."""
    with read_session(api.engine) as session:
        outcomes = len(session.execute(select(OutcomeRecord.id)).all())
        audits = len(session.execute(select(AuditEntry.id)).all())
    return outcomes, audits


@pytest.fixture
def patient(api: Api) -> str:
    return api.enroll()


class TestRead:
    def test_an_assessment_by_its_key_with_its_version_as_etag(
        self, api: Api, patient: str
    ) -> None:
        response = api.get(_path(RCL[0]))
        assert response.status_code == 200
        assert response.headers["etag"] == '"1"'
        body = response.json()
        assert (body["key"], body["due"], body["state"], body["version"]) == (
            RCL[0],
            "2024-04-30",
            "overdue",
            1,
        )

    @pytest.mark.parametrize(
        "key", ["ROM-101", "ROM-101:1:rcl_test", "ROM-101:x:rcl_test:1", "ROM-101:1:rcl_test:one"]
    )
    def test_a_malformed_key_is_explained(self, api: Api, patient: str, key: str) -> None:
        response = api.get(_path(key))
        assert response.status_code == 422
        assert "STUDY-ID:infusion:assessment:occurrence" in response.json()["detail"]

    @pytest.mark.parametrize(
        "key", ["ROM-101:1:rcl_test:9", "ROM-404:1:rcl_test:1", "ROM-101:2:rcl_test:1"]
    )
    def test_an_unknown_assessment_is_not_found(self, api: Api, patient: str, key: str) -> None:
        response = api.get(_path(key))
        assert response.status_code == 404
        assert response.json()["detail"] == f"no assessment {key!r}"


class TestOutcome:
    def test_completed_returns_the_assessment_the_change_and_a_new_etag(
        self, api: Api, patient: str
    ) -> None:
        response = api.post(
            _path(RCL[0], "outcome"), _completed("2024-04-30", "negative"), if_match='"1"'
        )
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == '"2"'
        body = response.json()
        assessment = body["assessment"]
        assert (assessment["status"], assessment["state"], assessment["performed_on"]) == (
            "completed",
            "completed",
            "2024-04-30",
        )
        assert (assessment["result"], assessment["protocol_deviation"], assessment["version"]) == (
            "negative",
            False,
            2,
        )
        assert body["change"]["added"] == []
        assert body["change"]["cancelled"] == []

    def test_three_negative_rcl_tests_archive_later_samples(self, api: Api, patient: str) -> None:
        for key, due in zip(RCL[:2], RCL_DUE[:2], strict=True):
            assert (
                api.post(
                    _path(key, "outcome"), _completed(due, "negative"), if_match='"1"'
                ).status_code
                == 200
            )
        response = api.post(
            _path(RCL[2], "outcome"), _completed(RCL_DUE[2], "negative"), if_match='"1"'
        )
        assert response.status_code == 200, response.text
        change = response.json()["change"]
        added = {row["key"].rsplit(":", 1)[0] for row in change["added"]}
        cancelled = {row["key"].rsplit(":", 1)[0] for row in change["cancelled"]}
        assert added == {"ROM-101:1:rcl_archive"}
        assert cancelled == {"ROM-101:1:rcl_yearly_test"}
        calendar = api.get("/api/v1/patients/ROM-101/calendar").json()
        yearly = [row for row in calendar if row["assessment"] == "rcl_yearly_test"]
        assert yearly
        assert all(row["status"] == "cancelled" for row in yearly)

    def test_a_positive_rcl_test_starts_confirmation(self, api: Api, patient: str) -> None:
        response = api.post(
            _path(RCL[0], "outcome"), _completed("2024-04-30", "positive"), if_match='"1"'
        )
        added = {row["key"].rsplit(":", 1)[0] for row in response.json()["change"]["added"]}
        assert {"ROM-101:1:rcl_confirm", "ROM-101:1:rcl_intensified"} <= added

    def test_a_result_in_other_words_of_a_coded_value_is_stored_as_the_code(
        self, api: Api, patient: str
    ) -> None:
        response = api.post(
            _path(RCL[0], "outcome"), _completed("2024-04-30", " POSITIVE "), if_match='"1"'
        )
        assert response.status_code == 200
        assert response.json()["assessment"]["result"] == "positive"
        added = {row["key"].rsplit(":", 1)[0] for row in response.json()["change"]["added"]}
        assert "ROM-101:1:rcl_confirm" in added

    def test_completed_outside_the_window_is_flagged_as_a_deviation(
        self, api: Api, patient: str
    ) -> None:
        response = api.post(_path(RCL[0], "outcome"), _completed("2024-06-03"), if_match='"1"')
        assert response.status_code == 200
        assert response.json()["assessment"]["protocol_deviation"] is True

    def test_missed_and_not_done(self, api: Api, patient: str) -> None:
        missed = api.post(
            _path(RCL[0], "outcome"), {"outcome": "missed", "date": "2024-05-14"}, if_match='"1"'
        )
        assert missed.json()["assessment"]["status"] == "missed"
        refused = api.post(
            _path(RCL[1], "outcome"), {"outcome": "not_done", "date": "2024-07-31"}, if_match='"1"'
        )
        assert refused.status_code == 422
        assert "reason" in refused.json()["detail"]
        body = {"outcome": "not_done", "date": "2024-07-31", "reason": "sample lost"}
        not_done = api.post(_path(RCL[1], "outcome"), body, if_match='"1"')
        assert not_done.json()["assessment"]["status_reason"] == "sample lost"

    def test_recording_twice_is_a_conflict(self, api: Api, patient: str) -> None:
        api.post(_path(RCL[0], "outcome"), _completed("2024-04-30"), if_match='"1"')
        before = _history(api)
        response = api.post(_path(RCL[0], "outcome"), _completed("2024-05-02"), if_match='"2"')
        assert response.status_code == 409
        assert "already completed on 2024-04-30" in response.json()["detail"]
        assert _history(api) == before

    @pytest.mark.parametrize(
        ("body", "says"),
        [
            (_completed("2026-11-26"), "in the future"),
            (_completed("2023-12-01"), "before the infusion"),
            ({"outcome": "missed", "date": "2024-05-14", "result": "negative"}, "only a completed"),
            ({"outcome": "lost", "date": "2024-05-14"}, "outcome"),
            ({"outcome": "completed", "date": "14/05/2024"}, "date"),
            (
                _completed("2024-04-30", "Positive by qPCR"),
                "result for rcl_test: 'Positive by qPCR' is not one of the coded values: "
                "negative (Negative), positive (Positive), indeterminate (Indeterminate), "
                "sample_not_evaluable (Sample not evaluable)",
            ),
        ],
    )
    def test_bad_input_is_refused_and_nothing_is_written(
        self, api: Api, patient: str, body: dict[str, Any], says: str
    ) -> None:
        before = _history(api)
        response = api.post(_path(RCL[0], "outcome"), body, if_match='"1"')
        assert response.status_code == 422
        assert says in response.json()["detail"]
        assert _history(api) == before
        assert api.version(RCL[0]) == 1


class TestIfMatch:
    def test_without_if_match_the_update_is_refused_with_428(self, api: Api, patient: str) -> None:
        response = api.post(_path(RCL[0], "outcome"), _completed("2024-04-30"))
        assert response.status_code == 428
        assert "If-Match" in response.json()["detail"]
        assert api.version(RCL[0]) == 1

    @pytest.mark.parametrize("tag", ['"7"', '"0"', '"abc"', "*"])
    def test_a_stale_or_foreign_etag_is_412_and_changes_nothing(
        self, api: Api, patient: str, tag: str
    ) -> None:
        before = _history(api)
        response = api.post(_path(RCL[0], "outcome"), _completed("2024-04-30"), if_match=tag)
        assert response.status_code == 412
        assert response.headers["content-type"] == "application/problem+json"
        assert _history(api) == before
        assert api.version(RCL[0]) == 1

    @pytest.mark.parametrize("tag", ['"1"', 'W/"1"', "1"])
    def test_the_current_etag_is_accepted(self, api: Api, patient: str, tag: str) -> None:
        assert (
            api.post(_path(RCL[0], "outcome"), _completed("2024-04-30"), if_match=tag).status_code
            == 200
        )

    def test_two_clients_with_the_same_etag_the_second_gets_412(
        self, api: Api, patient: str
    ) -> None:
        tag_a = api.get(_path(RCL[0]), role="nurse").headers["etag"]
        tag_b = api.get(_path(RCL[0]), role="investigator").headers["etag"]
        first = api.post(
            _path(RCL[0], "outcome"), _completed("2024-04-30", "negative"), "nurse", tag_a
        )
        second = api.post(
            _path(RCL[0], "outcome"), _completed("2024-05-01", "positive"), "investigator", tag_b
        )
        assert (first.status_code, second.status_code) == (200, 412)
        stored = api.get(_path(RCL[0])).json()
        assert (stored["performed_on"], stored["result"], stored["version"]) == (
            "2024-04-30",
            "negative",
            2,
        )

    def test_concurrent_updates_with_the_same_etag_one_wins(self, api: Api, patient: str) -> None:
        """Two clients post at the same moment: exactly one is applied, the other gets 412."""
        start = threading.Barrier(2)

        def post(role: str, result: str) -> int:
            start.wait()
            response = api.client.post(
                _path(RCL[0], "outcome"),
                json=_completed("2024-04-30", result),
                headers=api.headers(role, '"1"'),
            )
            return response.status_code

        with ThreadPoolExecutor(2) as pool:
            codes = sorted(pool.map(post, ["nurse", "investigator"], ["negative", "positive"]))
        assert codes == [200, 412]
        with read_session(api.engine) as session:
            assert len(session.execute(select(OutcomeRecord.id)).all()) == 1
        assert api.version(RCL[0]) == 2


class TestReschedule:
    def test_booked_inside_the_window(self, api: Api, patient: str) -> None:
        response = api.post(
            _path(NEURO, "reschedule"),
            {"date": "2026-12-10", "reason": "school holiday"},
            if_match='"1"',
        )
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == '"2"'
        body = response.json()
        assert (body["appointment"], body["due"], body["window_start"]) == (
            "2026-12-10",
            "2027-01-31",
            "2026-12-02",
        )

    @pytest.mark.parametrize(
        ("day", "says"), [("2027-04-02", "outside the window"), ("2026-12-01", "outside")]
    )
    def test_outside_the_window_is_refused(
        self, api: Api, patient: str, day: str, says: str
    ) -> None:
        response = api.post(_path(NEURO, "reschedule"), {"date": day}, if_match='"1"')
        assert response.status_code == 422
        assert says in response.json()["detail"]
        assert api.version(NEURO) == 1

    def test_a_past_day_is_refused(self, api: Api, patient: str) -> None:
        response = api.post(_path(RCL[0], "reschedule"), {"date": "2024-05-01"}, if_match='"1"')
        assert response.status_code == 422
        assert "in the past" in response.json()["detail"]

    def test_needs_if_match(self, api: Api, patient: str) -> None:
        assert api.post(_path(NEURO, "reschedule"), {"date": "2026-12-10"}).status_code == 428
        assert (
            api.post(_path(NEURO, "reschedule"), {"date": "2026-12-10"}, if_match='"5"').status_code
            == 412
        )


@pytest.mark.parametrize(
    "key", ["ROM-101:1:rcl_test:99999999999999999999", "ROM-101:99999999999:rcl_test:1"]
)
def test_a_key_with_numbers_beyond_any_row_is_a_clear_422(api: Api, key: str) -> None:
    api.enroll()
    response = api.get(f"/api/v1/assessments/{key}")
    assert response.status_code == 422, response.text
    assert "is not an assessment key" in response.json()["detail"]


class TestCorrections:
    def _recorded(self, api: Api) -> None:
        response = api.post(
            _path(RCL[0], "outcome"), _completed("2024-04-30", "negative"), if_match='"1"'
        )
        assert response.status_code == 200

    def test_a_correction_needs_if_match_and_a_reason(self, api: Api, patient: str) -> None:
        self._recorded(api)
        body = {"result": "positive", "reason": "transcription error"}
        assert api.post(_path(RCL[0], "corrections"), body).status_code == 428
        no_reason = api.post(_path(RCL[0], "corrections"), {"result": "positive"}, if_match='"2"')
        assert no_reason.status_code == 422
        assert api.version(RCL[0]) == 2

    def test_negative_to_positive_re_plans_and_keeps_the_history(
        self, api: Api, patient: str
    ) -> None:
        self._recorded(api)
        before = _history(api)
        response = api.post(
            _path(RCL[0], "corrections"),
            {"result": "Positive", "reason": "transcription error"},
            if_match='"2"',
        )
        assert response.status_code == 200
        assert response.headers["etag"] == '"3"'
        body = response.json()
        assert body["assessment"]["result"] == "positive"
        added = {row["key"].rsplit(":", 1)[0] for row in body["change"]["added"]}
        assert {"ROM-101:1:rcl_confirm", "ROM-101:1:rcl_intensified"} <= added
        outcomes, audits = _history(api)
        assert outcomes == before[0] + 1  # one more version; the first one stays
        assert audits > before[1]

    def test_a_pending_assessment_has_nothing_to_correct(self, api: Api, patient: str) -> None:
        response = api.post(
            _path(RCL[0], "corrections"), {"result": "positive", "reason": "x"}, if_match='"1"'
        )
        assert response.status_code == 409
        assert "only a recorded outcome can be corrected" in response.json()["detail"]

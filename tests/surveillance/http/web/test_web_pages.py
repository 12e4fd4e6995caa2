"""The due list, the record-outcome form, the patient page and the dashboard, over HTTP."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col
from support.web_support import USERS, SiteDb, csrf_of, sign_in_as

from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session
from surveillance.records.patients import Assessment, OutcomeRecord, Patient

# ROM-101, infused 2024-01-31: the month-3 RCL test (window 2024-04-16..05-14) is long overdue.
RCL_1 = "ROM-101:1:rcl_test:1"
RCL_1_PATH = "/assessments/ROM-101:1:rcl_test:1/outcome"


def _row(db: SiteDb, key: str) -> Assessment:
    study_id, infusion, rule, occurrence = key.rsplit(":", 3)
    with read_session(db.engine) as session:
        row: Assessment = session.execute(
            select(Assessment)
            .join(Patient, col(Patient.id) == col(Assessment.patient_id))
            .where(
                col(Patient.study_id) == study_id,
                col(Assessment.infusion_number) == int(infusion),
                col(Assessment.assessment) == rule,
                col(Assessment.occurrence) == int(occurrence),
            )
        ).scalar_one()
        return row


def _history(db: SiteDb) -> tuple[int, int]:
    with read_session(db.engine) as session:
        return (
            len(session.execute(select(col(OutcomeRecord.id))).all()),
            # a refused form is audited as a permission denial, and changes nothing else
            len(
                session.execute(
                    select(col(AuditEntry.id)).where(col(AuditEntry.action) != "permission_denied")
                ).all()
            ),
        )


@pytest.fixture
def nurse(pages: TestClient) -> str:
    """Signed in as the Rome nurse; returns the session's CSRF token."""
    sign_in_as(pages, "nurse")
    return csrf_of(pages.get("/sites/Rome/due"))


def _record(pages: TestClient, csrf: str, **fields: str) -> httpx.Response:
    data = {
        "csrf_token": csrf,
        "version": "1",
        "outcome": "completed",
        "next": "/sites/Rome/due",
        **fields,
    }
    response: httpx.Response = pages.post(RCL_1_PATH, data=data)
    return response


def _open_form(page: str, key: str) -> str:
    """The row of ``key`` on a re-shown due list, from its open "Other outcome" form."""
    row = page[page.index(f'data-key="{key}"') :]
    row = row[: row.index("</tr>")]
    assert '<details class="more" open>' in row
    return row[row.index('class="outcome-form"') :]


class TestDueList:
    def test_overdue_comes_first_with_days_overdue_and_a_form_per_row(
        self, pages: TestClient, nurse: str
    ) -> None:
        page = pages.get("/sites/Rome/due")
        assert page.status_code == 200
        text = page.text
        assert (
            text.index('id="h-overdue"') < text.index('id="h-due"') < text.index('id="h-upcoming"')
        )
        assert f'data-key="{RCL_1}"' in text
        assert "ERL-101" not in text
        assert text.count('name="csrf_token"') > 2
        assert 'name="version" value="1"' in text

    def test_filters_narrow_the_list(self, pages: TestClient, nurse: str) -> None:
        page = pages.get("/sites/Rome/due?status=overdue&category=vector-safety&on=2024-06-01")
        assert page.status_code == 200
        assert f'data-key="{RCL_1}"' in page.text
        assert 'id="h-due"' not in page.text
        assert "ROM-101:1:cbc_early" not in page.text  # haematology is filtered out

    def test_a_date_that_is_not_a_date_is_explained(self, pages: TestClient, nurse: str) -> None:
        page = pages.get("/sites/Rome/due?on=yesterday")
        assert page.status_code == 200
        assert "is not a date" in page.text

    def test_another_sites_list_is_not_found(self, pages: TestClient, nurse: str) -> None:
        for site in ("Erlangen", "Nowhere"):
            page = pages.get(f"/sites/{site}/due")
            assert page.status_code == 404
            assert "<h1>Not found</h1>" in page.text

    def test_pharmacovigilance_may_not_see_due_lists(self, pages: TestClient) -> None:
        sign_in_as(pages, "pharmacovigilance")
        assert pages.get("/sites/Rome/due").status_code == 403

    def test_the_page_is_not_cached_and_cannot_be_framed(
        self, pages: TestClient, nurse: str
    ) -> None:
        headers = pages.get("/sites/Rome/due").headers
        assert headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]


class TestRecordOutcome:
    def test_completed_is_recorded_audited_and_announced(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        response = _record(pages, nurse, on="2024-05-01", result="negative")
        assert (response.status_code, response.headers["location"]) == (303, "/sites/Rome/due")
        row = _row(site_db, RCL_1)
        assert (row.status, str(row.performed_on), row.result, row.version) == (
            "completed",
            "2024-05-01",
            "negative",
            2,
        )
        with read_session(site_db.engine) as session:
            actors = (
                session.execute(
                    select(col(AuditEntry.actor)).where(col(AuditEntry.entity_key) == RCL_1)
                )
                .scalars()
                .all()
            )
        assert actors == [USERS["nurse"][0]]
        page = pages.get("/sites/Rome/due")
        assert "Recorded: ROM-101" in page.text
        assert 'role="status"' in page.text
        assert f'data-key="{RCL_1}"' not in page.text
        assert "Recorded: ROM-101" not in pages.get("/sites/Rome/due").text  # shown once

    def test_completed_today_is_today_at_the_site(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        _record(pages, nurse, quick="1")
        row = _row(site_db, RCL_1)
        assert (str(row.performed_on), row.protocol_deviation) == ("2026-11-25", True)
        assert "protocol deviation" in pages.get("/sites/Rome/due").text

    def test_an_empty_date_is_an_error_beside_the_date_not_today(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        before = _history(site_db)
        response = _record(pages, nurse, on="", result="negative", note="haemolysed, re-drawn")
        assert response.status_code == 422
        assert _history(site_db) == before
        assert _row(site_db, RCL_1).status == "pending"
        form = _open_form(response.text, RCL_1)
        assert 'name="on" type="date" value="" max="2026-11-25" required aria-invalid="true"' in (
            form
        )
        assert "give the date it was done" in form
        assert 'value="haemolysed, re-drawn"' in form  # what was typed is kept
        assert '<option value="negative" selected>' in form

    def test_a_stale_version_changes_nothing_and_says_so(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        before = _history(site_db)
        response = _record(pages, nurse, version="7", on="2024-05-01")
        assert response.status_code == 303
        assert _row(site_db, RCL_1).status == "pending"
        assert _history(site_db) == before
        page = pages.get("/sites/Rome/due")
        assert "Nothing was recorded" in page.text
        assert "someone changed it" in page.text
        assert 'role="alert"' in page.text

    def test_recording_twice_is_refused_the_second_time(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        _record(pages, nurse, on="2024-05-01")
        before = _history(site_db)
        _record(pages, nurse, outcome="missed", on="2024-05-02")
        assert _history(site_db) == before
        assert "Nothing was recorded" in pages.get("/sites/Rome/due").text

    def test_the_result_field_offers_what_the_assessment_can_produce(
        self, pages: TestClient, nurse: str
    ) -> None:
        page = pages.get("/sites/Rome/due").text
        row = page[page.index(f'data-key="{RCL_1}"') :]
        form = row[row.index('class="outcome-form"') :]
        field = form[: form.index("</select>", form.index('name="result"'))]
        assert '<select id="r-' in field
        assert '<option value="positive">Positive</option>' in field
        assert '<option value="sample_not_evaluable">Sample not evaluable</option>' in field

    def test_a_result_in_other_words_is_refused_and_nothing_is_recorded(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        before = _history(site_db)
        response = _record(pages, nurse, on="2024-05-01", result="Positive by qPCR")
        assert response.status_code == 422
        assert _row(site_db, RCL_1).status == "pending"
        assert _history(site_db) == before
        form = _open_form(response.text, RCL_1)
        assert "is not one of the coded values" in form
        assert 'name="result" aria-invalid="true"' in form
        assert 'value="2024-05-01"' in form

    def test_a_quantity_and_its_unit_are_read_together(self) -> None:
        from surveillance.http.web.outcome_entry import typed_result

        assert typed_result(" 3.5 ", "g/L") == "3.5 g/L"
        assert typed_result("", "g/L") is None
        assert typed_result("negative", "") == "negative"

    def test_a_recorded_result_is_corrected_from_the_patient_page(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        _record(pages, nurse, on="2024-05-01", result="negative")
        page = pages.get("/patients/ROM-101").text
        item = f"/patients/ROM-101/assessments/{RCL_1.replace(':', '%3A')}"
        assert f'href="{item}"' in page  # the row's "Correct" link: the form is on its page
        form = pages.get(item).text
        assert f'action="/assessments/{RCL_1.replace(":", "%3A")}/correction"' in form
        data = {
            "csrf_token": nurse,
            "version": "2",
            "outcome": "completed",
            "on": "2024-05-01",
            "result": "Positive",
            "reason": "",
            "next": "/patients/ROM-101",
        }
        refused = pages.post(f"/assessments/{RCL_1}/correction", data=data)
        assert refused.status_code == 422
        assert _row(site_db, RCL_1).result == "negative"
        assert "needs a reason" in refused.text
        assert '<option value="positive" selected>' in refused.text  # the typed choice kept
        done = pages.post(
            f"/assessments/{RCL_1}/correction", data={**data, "reason": "transcription error"}
        )
        assert (done.status_code, done.headers["location"]) == (303, "/patients/ROM-101")
        row = _row(site_db, RCL_1)
        assert (row.result, row.version) == ("positive", 3)
        page = pages.get("/patients/ROM-101").text
        assert f"Corrected: {RCL_1}" in page
        assert "transcription error" in page  # in the audit trail

    def test_not_done_needs_a_reason(self, pages: TestClient, site_db: SiteDb, nurse: str) -> None:
        response = _record(pages, nurse, outcome="not_done", on="2024-05-01")
        assert response.status_code == 422
        assert _row(site_db, RCL_1).status == "pending"
        form = _open_form(response.text, RCL_1)
        assert "Say why it was not done" in form
        assert f"{RCL_1}:" not in response.text  # no internal key as the message
        assert 'name="reason" type="text" maxlength="500" value="" aria-invalid="true"' in form
        _record(pages, nurse, outcome="not_done", on="2024-05-01", reason="sample lost")
        row = _row(site_db, RCL_1)
        assert (row.status, row.status_reason) == ("not_done", "sample lost")

    def test_a_form_without_the_session_token_is_refused(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        before = _history(site_db)
        response = _record(pages, "forged")
        assert response.status_code == 403
        assert "did not come from this site" in response.text
        assert _history(site_db) == before

    def test_a_form_posted_without_a_session_goes_to_sign_in(
        self, pages: TestClient, site_db: SiteDb
    ) -> None:
        response = _record(pages, "anything")
        assert (response.status_code, response.headers["location"]) == (303, "/login")
        assert _row(site_db, RCL_1).status == "pending"

    def test_another_sites_assessment_is_not_found(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        key = "ERL-101:1:baseline_evaluation:1"
        response = pages.post(
            f"/assessments/{key}/outcome", data={"csrf_token": nurse, "version": "1"}
        )
        assert response.status_code == 404
        assert _row(site_db, key).status == "pending"

    def test_a_next_outside_the_site_is_not_followed(self, pages: TestClient, nurse: str) -> None:
        response = _record(pages, nurse, on="2024-05-01", next="https://evil.example/")
        assert response.headers["location"] == "/sites/Rome/due"


class TestPatientPage:
    def test_facts_timeline_table_and_audit_trail(self, pages: TestClient, nurse: str) -> None:
        _record(pages, nurse, on="2024-05-01")
        page = pages.get("/patients/ROM-101")
        assert page.status_code == 200
        text = page.text
        assert "<h1>Patient ROM-101</h1>" in text
        assert text.count('<svg viewBox="0 0 1000') == 2
        assert "today 25 Nov 2026" in text
        for state in ("completed", "overdue", "upcoming"):
            assert f'-mk-{state}"' in text
        assert (
            text.index('id="h-calendar"')
            < text.index('id="h-assessments"')
            < text.index('id="h-audit"')
        )
        audit = text[text.index('id="audit-trail"') :]
        assert RCL_1 in audit
        assert USERS["nurse"][0] in audit
        assert "status: pending → completed" in audit

    def test_another_sites_patient_is_not_found(self, pages: TestClient, nurse: str) -> None:
        for study_id in ("ERL-101", "ROM-999"):
            page = pages.get(f"/patients/{study_id}")
            assert page.status_code == 404
            assert "There is no patient" in page.text

    def test_admin_sees_every_site(self, pages: TestClient) -> None:
        sign_in_as(pages, "admin")
        assert pages.get("/patients/ERL-101").status_code == 200


class TestDashboard:
    def test_an_investigator_sees_their_sites_figures(self, pages: TestClient) -> None:
        sign_in_as(pages, "investigator")
        page = pages.get("/dashboard")
        assert page.status_code == 200
        assert 'id="site-Rome"' in page.text
        assert 'id="site-Erlangen"' not in page.text
        assert "Oldest overdue" in page.text
        assert RCL_1.split(":")[0] in page.text

    def test_admin_sees_all_sites(self, pages: TestClient) -> None:
        sign_in_as(pages, "admin")
        page = pages.get("/dashboard")
        assert 'id="site-Rome"' in page.text
        assert 'id="site-Erlangen"' in page.text

    def test_a_nurse_may_look_at_her_sites(self, pages: TestClient, nurse: str) -> None:
        page = pages.get("/dashboard?on=2025-01-01")
        assert page.status_code == 200
        assert "As of 1 Jan 2025" in page.text  # dates for people are in words

    def test_pharmacovigilance_may_not(self, pages: TestClient) -> None:
        sign_in_as(pages, "pharmacovigilance")
        assert pages.get("/dashboard").status_code == 403
        assert "pseudonymous safety data" in pages.get("/access").text

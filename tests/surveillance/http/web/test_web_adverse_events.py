"""Adverse events through the web pages: record, follow up, nullify, list, dashboard.

ROM-101 (Rome, infused 2024-01-31) and ERL-101 (Erlangen); the clock stands at noon UTC on
2026-11-25. Forms are posted as a browser would, with the session's CSRF token.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from support.web_support import NOW, USERS, SiteDb, csrf_of, sign_in_as

import rules
from surveillance.accounts import auth
from surveillance.adverse_events.acks import record_ack
from surveillance.adverse_events.cases import create_case, get_case, versions_of
from surveillance.adverse_events.facts import CaseFacts
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    Seriousness,
)
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion

CASE = "ROM-101-AE01"
# A serious infection as a nurse types it into the form.
INFECTION = {
    "onset_date": "2026-11-20",
    "awareness_date": "2026-11-23",
    "term": "Pneumonia",
    "category": "infection",
    "grade": "3",
    "grade_scale": "ctcae_v5",
    "serious": "yes",
    "seriousness_criteria": ["hospitalization"],
    "relatedness": "possibly_related",
    "outcome": "recovering",
    "narrative": "Admitted with fever; right lower lobe consolidation.",
}
ERL_INFECTION = CaseFacts(
    onset_date=date(2026, 11, 20),
    awareness_date=date(2026, 11, 21),
    term="Sepsis",
    category=Category.infection,
    grade=4,
    grade_scale=GradeScale.ctcae_v5,
    serious=True,
    seriousness_criteria=(Seriousness.life_threatening,),
    relatedness=Relatedness.possibly_related,
    expected=False,
    outcome=CaseOutcome.recovering,
)


@pytest.fixture
def nurse(pages: TestClient) -> str:
    """Signed in as the Rome nurse; returns the session's CSRF token."""
    sign_in_as(pages, "nurse")
    return csrf_of(pages.get("/sites/Rome/due"))


def _record(
    pages: TestClient, csrf: str, study_id: str = "ROM-101", **fields: object
) -> httpx.Response:
    data = {"csrf_token": csrf, **INFECTION, **fields}
    response: httpx.Response = pages.post(f"/patients/{study_id}/adverse-events", data=data)
    return response


def _counts(db: SiteDb) -> tuple[int, int, int]:
    """Cases, versions and audit rows of changes: what a refused form must leave as it was
    (its refusal is audited as a permission denial, which is not counted here)."""
    with read_session(db.engine) as session:
        return (
            session.execute(select(func.count()).select_from(AdverseEventCase)).scalar_one(),
            session.execute(select(func.count()).select_from(AdverseEventVersion)).scalar_one(),
            session.execute(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action != "permission_denied")  # type: ignore[arg-type]
            ).scalar_one(),
        )


def _versions(db: SiteDb, case_id: str = CASE) -> list[AdverseEventVersion]:
    with read_session(db.engine) as session:
        return versions_of(session, case_id)


def _erlangen_case(db: SiteDb) -> str:
    with write_session(db.engine) as session:
        change = create_case(
            session,
            study_id="ERL-101",
            facts=ERL_INFECTION,
            actor="test",
            registry=rules.ProtocolRegistry.from_directory(),
            now=NOW,
        )
        return change.case.case_id


def _row(page: httpx.Response, field: str) -> str:
    found = re.search(rf'<tr data-field="{field}">(.*?)</tr>', page.text, re.DOTALL)
    assert found, f"no row {field!r} in the versions table"
    return found.group(1)


def _cells(row: str) -> list[str]:
    return re.findall(r"<td data-version=\"\d+\"(.*?)</td>", row, re.DOTALL)


class TestRecord:
    def test_the_form_records_version_1_and_lands_on_the_case(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        form = pages.get("/patients/ROM-101")
        assert 'action="/patients/ROM-101/adverse-events#record-ae"' in form.text
        assert 'value="2026-11-25"' in form.text  # learned of it: today by default

        response = _record(pages, nurse)
        assert (response.status_code, response.headers["location"]) == (
            303,
            f"/adverse-events/{CASE}",
        )
        [version] = _versions(site_db)
        assert (version.version, version.term, version.serious, version.grade) == (
            1,
            "Pneumonia",
            True,
            3,
        )
        assert (version.seriousness_criteria, version.recorded_by) == (
            "hospitalization",
            USERS["nurse"][0],
        )
        assert (version.expected, version.reporter_qualification) == (
            False,  # unticked: unexpected
            "other_health_professional",
        )

        page = pages.get(f"/adverse-events/{CASE}")
        assert page.status_code == 200
        assert f"<h1>Adverse event {CASE}</h1>" in page.text
        assert f"Recorded {CASE}: Pneumonia." in page.text  # the flash, shown once
        assert "It is serious" in page.text
        assert '<th scope="col" class="version-head" data-version="1">' in page.text
        assert 'data-version="2"' not in page.text
        # A serious case starts its reporting clocks: they are listed with their due dates.
        deadlines = page.text[page.text.index('id="h-deadlines"') :]
        assert '<table class="deadlines-table' in deadlines
        assert re.search(r"<td[^>]*>\d{1,2} [A-Z][a-z]{2} 2026</td>", deadlines)  # in words

        patient = pages.get("/patients/ROM-101")
        assert f'<a href="/adverse-events/{CASE}">{CASE}</a>' in patient.text
        assert "ae-serious" in patient.text

    def test_the_api_sees_the_case_recorded_through_the_form(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        _record(pages, nurse)
        with read_session(site_db.engine) as session:
            case = get_case(session, CASE)
        assert (case.version, case.status, case.site_id) == (1, "open", "Rome")

    def test_a_refused_form_keeps_the_entries_and_writes_nothing(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        before = _counts(site_db)
        response = _record(
            pages,
            nurse,
            end_date="2026-11-10",
            seriousness_criteria=["hospitalization", "life_threatening"],
        )
        assert response.status_code == 422
        assert _counts(site_db) == before
        text = response.text
        assert "<h1>Patient ROM-101</h1>" in text
        assert '<details class="ae-details" id="record-ae" open>' in text
        assert "Nothing was saved" in text
        assert "End date: 2026-11-10 is before the onset on 2026-11-20" in text
        assert re.search(r'id="ae-end_date"[^>]*value="2026-11-10"[^>]*aria-invalid="true"', text)
        assert re.search(r'id="ae-term"[^>]*value="Pneumonia"', text)
        assert re.search(r'id="ae-onset_date"[^>]*value="2026-11-20"', text)
        assert '<option value="infection" selected>' in text
        assert '<option value="3" selected>' in text
        assert re.search(r'id="ae-serious"[^>]*checked', text)
        assert re.search(r'id="ae-crit-life_threatening"[^>]*checked', text)
        assert not re.search(r'id="ae-crit-death"[^>]*checked', text)
        assert "right lower lobe consolidation.</textarea>" in text

    def test_a_form_that_cannot_be_read_is_explained_per_field(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        before = _counts(site_db)
        response = _record(pages, nurse, onset_date="", category="", grade="9")
        assert response.status_code == 422
        assert _counts(site_db) == before
        assert 'href="#ae-onset_date">Onset date: give the date' in response.text
        assert 'href="#ae-category">Category: choose one' in response.text
        assert "Grade: &#39;9&#39; is not a grade" in response.text

    def test_a_form_without_the_session_token_is_refused(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        before = _counts(site_db)
        response = _record(pages, "forged")
        assert response.status_code == 403
        assert _counts(site_db) == before


class TestCasePage:
    def test_a_follow_up_adds_version_2_side_by_side_with_the_change_marked(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        _record(pages, nurse)
        page = pages.get(f"/adverse-events/{CASE}")
        assert 'name="version" value="1"' in page.text
        assert re.search(r'id="fu-term"[^>]*value="Pneumonia"', page.text)  # pre-filled
        fields = {
            **INFECTION,
            "grade": "4",
            "outcome": "recovered",
            "end_date": "2026-11-24",
            "expected": "yes",
        }
        response = pages.post(
            f"/adverse-events/{CASE}/versions",
            data={"csrf_token": nurse, "version": "1", **fields},
        )
        assert (response.status_code, response.headers["location"]) == (
            303,
            f"/adverse-events/{CASE}",
        )
        assert [(v.version, v.grade, v.outcome, v.expected) for v in _versions(site_db)] == [
            (1, 3, "recovering", False),
            (2, 4, "recovered", True),
        ]

        page = pages.get(f"/adverse-events/{CASE}")
        assert "Saved version 2 of ROM-101-AE01." in page.text
        assert page.text.count('class="version-head"') == 2
        grade = _cells(_row(page, "grade"))
        assert len(grade) == 2
        assert not grade[0].startswith(' class="changed"')
        assert grade[1].startswith(' class="changed"')
        assert "changed</span>" in grade[1]
        expected = _cells(_row(page, "expected"))
        assert ">Unexpected" in expected[0]
        assert expected[1].startswith(' class="changed">Expected')
        term = _cells(_row(page, "term"))
        assert [c.startswith(' class="changed"') for c in term] == [False, False]
        assert 'name="version" value="2"' in page.text

    def test_a_stale_follow_up_is_refused_and_says_someone_changed_it_first(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        _record(pages, nurse)
        url = f"/adverse-events/{CASE}/versions"
        pages.post(url, data={"csrf_token": nurse, "version": "1", **INFECTION, "grade": "4"})
        before = _counts(site_db)
        response = pages.post(
            url, data={"csrf_token": nurse, "version": "1", **INFECTION, "term": "Lung infection"}
        )
        assert response.status_code == 409
        assert _counts(site_db) == before
        assert "someone changed this case first" in response.text
        assert "Reload the page" in response.text
        assert re.search(r'id="fu-term"[^>]*value="Lung infection"', response.text)
        assert 'name="version" value="2"' in response.text

    def test_an_invalid_follow_up_keeps_the_entries(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        _record(pages, nurse)
        before = _counts(site_db)
        response = pages.post(
            f"/adverse-events/{CASE}/versions",
            data={"csrf_token": nurse, "version": "1", **INFECTION, "outcome": "fatal"},
        )
        assert response.status_code == 422
        assert _counts(site_db) == before
        assert "a fatal outcome needs the criterion" in response.text
        assert '<details class="ae-details" id="follow-up" open>' in response.text
        assert '<option value="fatal" selected>' in response.text

    def test_nullify_needs_a_reason_then_marks_the_case_and_hides_the_forms(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        _record(pages, nurse)
        url = f"/adverse-events/{CASE}/nullify"
        before = _counts(site_db)
        refused = pages.post(url, data={"csrf_token": nurse, "version": "1", "reason": " "})
        assert refused.status_code == 422
        assert _counts(site_db) == before
        assert 'id="nullify-reason-error"' in refused.text

        response = pages.post(
            url, data={"csrf_token": nurse, "version": "1", "reason": "wrong patient"}
        )
        assert response.status_code == 303
        versions = _versions(site_db)
        assert [(v.version, v.change, v.nullify_reason) for v in versions] == [
            (1, "created", None),
            (2, "nullified", "wrong patient"),
        ]
        page = pages.get(f"/adverse-events/{CASE}")
        assert page.status_code == 200
        assert "Nullified: wrong patient" in page.text
        assert 'class="version-head version-nullified" data-version="2"' in page.text
        assert "ae-status-nullified" in page.text
        assert f'action="/adverse-events/{CASE}/versions' not in page.text
        assert f'action="/adverse-events/{CASE}/nullify' not in page.text

    def test_a_nullified_case_takes_no_follow_up(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        _record(pages, nurse)
        pages.post(
            f"/adverse-events/{CASE}/nullify",
            data={"csrf_token": nurse, "version": "1", "reason": "duplicate"},
        )
        before = _counts(site_db)
        response = pages.post(
            f"/adverse-events/{CASE}/versions",
            data={"csrf_token": nurse, "version": "2", **INFECTION},
        )
        assert response.status_code == 409
        assert "was nullified" in response.text
        assert _counts(site_db) == before


class TestAccess:
    def test_another_sites_patient_and_case_are_not_found(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        erl = _erlangen_case(site_db)
        before = _counts(site_db)
        assert pages.get(f"/adverse-events/{erl}").status_code == 404
        assert pages.get("/adverse-events/ROM-101-AE99").status_code == 404
        assert pages.get("/sites/Erlangen/adverse-events").status_code == 404
        assert _record(pages, nurse, study_id="ERL-101").status_code == 404
        invalid = _record(pages, nurse, study_id="ERL-101", end_date="2020-01-01")
        assert invalid.status_code == 404  # a refused form does not show the patient either
        follow_up = pages.post(
            f"/adverse-events/{erl}/versions",
            data={"csrf_token": nurse, "version": "1", **INFECTION},
        )
        assert follow_up.status_code == 404
        nullify = pages.post(
            f"/adverse-events/{erl}/nullify",
            data={"csrf_token": nurse, "version": "1", "reason": "not ours"},
        )
        assert nullify.status_code == 404
        assert _counts(site_db) == before

    def test_pharmacovigilance_may_not_use_the_pages(
        self, pages: TestClient, site_db: SiteDb
    ) -> None:
        erl = _erlangen_case(site_db)
        sign_in_as(pages, "pharmacovigilance")
        csrf = csrf_of(pages.get("/access"))
        before = _counts(site_db)
        assert pages.get(f"/adverse-events/{erl}").status_code == 403
        assert pages.get("/sites/Rome/adverse-events").status_code == 403
        assert _record(pages, csrf).status_code == 403
        response = pages.post(
            f"/adverse-events/{erl}/nullify",
            data={"csrf_token": csrf, "version": "1", "reason": "test"},
        )
        assert response.status_code == 403
        assert _counts(site_db) == before


class TestSiteList:
    def test_every_case_newest_awareness_first_and_a_serious_filter(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        _record(pages, nurse)
        _record(
            pages,
            nurse,
            term="Headache",
            category="neurologic",
            grade="1",
            serious="",
            seriousness_criteria=[],
            awareness_date="2026-11-24",
            outcome="recovered",
        )
        page = pages.get("/sites/Rome/adverse-events")
        assert page.status_code == 200
        assert page.text.index('data-case="ROM-101-AE02"') < page.text.index(
            'data-case="ROM-101-AE01"'
        )
        assert "ERL-101" not in page.text
        nav = pages.get("/sites/Rome/due").text
        assert '<a href="/sites/Rome/adverse-events">Adverse events · Rome</a>' in nav
        serious = pages.get("/sites/Rome/adverse-events?serious=1")
        assert 'data-case="ROM-101-AE01"' in serious.text
        assert 'data-case="ROM-101-AE02"' not in serious.text
        assert re.search(r'id="f-serious"[^>]*checked', serious.text)


class TestDashboard:
    def test_a_serious_case_shows_who_has_not_yet_acknowledged_it(
        self, pages: TestClient, site_db: SiteDb
    ) -> None:
        sign_in_as(pages, "investigator")
        csrf = csrf_of(pages.get("/dashboard"))
        assert 'id="h-sae-1"' in pages.get("/dashboard").text
        assert 'class="sae-table"' not in pages.get("/dashboard").text
        _record(pages, csrf)
        page = pages.get("/dashboard")
        panel = page.text[page.text.index('class="sae-table') :]
        row = panel[panel.index(f'data-case="{CASE}"') :]
        row = row[: row.index("</tr>")]
        assert USERS["pharmacovigilance"][0] in row
        assert "<strong>not yet</strong>" in row
        assert "ack-bad" not in row  # just recorded: not late yet
        assert "due <span" in row  # its open reporting deadlines

    def test_not_yet_after_24_hours_and_a_rejection_are_flagged(
        self, pages: TestClient, site_db: SiteDb
    ) -> None:
        second = "safety2@sponsor.example"
        with write_session(site_db.engine) as session:
            auth.add_user(session, email=second, role="pharmacovigilance", sites=[], actor="test")
            change = create_case(
                session,
                study_id="ROM-101",
                facts=ERL_INFECTION,
                actor="test",
                registry=rules.ProtocolRegistry.from_directory(),
                now=NOW - timedelta(hours=25),
            )
            record_ack(
                session,
                consumer=USERS["pharmacovigilance"][0],
                case_id=change.case.case_id,
                version=1,
                status="AR",
                message="MedDRA code missing",
                now=NOW - timedelta(hours=20),
            )
        sign_in_as(pages, "investigator")
        page = pages.get("/dashboard")
        row = page.text[page.text.index(f'data-case="{CASE}"') :]
        row = row[: row.index("</tr>")]
        rejected, waiting = re.findall(r'<li class="ack[^"]*">.*?</li>', row, re.DOTALL)
        assert USERS["pharmacovigilance"][0] in rejected
        assert '<li class="ack ack-bad">' in rejected
        assert "AR · rejected</strong> — MedDRA code missing" in rejected
        assert second in waiting
        assert '<li class="ack ack-bad">' in waiting
        assert "<strong>not yet</strong> (over 24 h)" in waiting

    def test_an_accepted_or_nullified_case_is_not_flagged(
        self, pages: TestClient, site_db: SiteDb
    ) -> None:
        with write_session(site_db.engine) as session:
            change = create_case(
                session,
                study_id="ROM-101",
                facts=ERL_INFECTION,
                actor="test",
                registry=rules.ProtocolRegistry.from_directory(),
                now=NOW - timedelta(hours=25),
            )
            record_ack(
                session,
                consumer=USERS["pharmacovigilance"][0],
                case_id=change.case.case_id,
                version=1,
                status="AA",
                message=None,
                now=NOW - timedelta(hours=24),
            )
        sign_in_as(pages, "investigator")
        row = pages.get("/dashboard").text
        row = row[row.index(f'data-case="{CASE}"') :]
        row = row[: row.index("</tr>")]
        assert '<li class="ack ack-ok">' in row
        assert "AA · accepted</strong>" in row
        assert "ack-bad" not in row

"""The patient list, enrolment with a calendar preview, re-infusion with the calendar
difference, and status changes, over HTTP (the services are the API's)."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import col
from support.web_support import USERS, SiteDb, csrf_of, sign_in_as

from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session
from surveillance.records.patients import Infusion, Patient

ENROL = {
    "study_id": "rom-120",  # typed in lower case: stored upper case
    "site": "Rome",
    "birth_date": "2015-05-05",
    "sex": "M",
    "diagnosis": "sle",
    "protocol": "cd19-car-t-pediatric-autoimmune",
    "infusion_date": "2026-10-01",
}


def _signed_in(pages: TestClient, role: str) -> str:
    sign_in_as(pages, role)
    page = pages.get("/sites/Rome/due" if role != "pharmacovigilance" else "/access")
    return csrf_of(page)


@pytest.fixture
def investigator(pages: TestClient) -> str:
    return _signed_in(pages, "investigator")


@pytest.fixture
def nurse(pages: TestClient) -> str:
    return _signed_in(pages, "nurse")


def _patient(db: SiteDb, study_id: str) -> Patient | None:
    with read_session(db.engine) as session:
        found: Patient | None = session.execute(
            select(Patient).where(col(Patient.study_id) == study_id)
        ).scalar_one_or_none()
        return found


def _audit(db: SiteDb, action: str) -> list[AuditEntry]:
    with read_session(db.engine) as session:
        return list(
            session.execute(select(AuditEntry).where(col(AuditEntry.action) == action)).scalars()
        )


def _counts(db: SiteDb) -> tuple[int, int]:
    with read_session(db.engine) as session:
        patients = session.execute(select(func.count()).select_from(Patient)).scalar_one()
        audit = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        return int(patients), int(audit)


def _field(page: str, name: str) -> str:
    """The input or select named ``name``, as the page has it."""
    found = re.search(rf'<(?:input|select)[^>]*name="{name}"[^>]*>', page)
    assert found, f"no field {name}"
    return found.group(0)


class TestPatientList:
    def test_lists_the_sites_patients_with_their_counts_and_links(
        self, pages: TestClient, investigator: str
    ) -> None:
        page = pages.get("/sites/Rome/patients")
        assert page.status_code == 200
        assert '<a href="/patients/ROM-101">ROM-101</a>' in page.text
        assert "ERL-101" not in page.text
        row = page.text[page.text.index("ROM-101") :]
        assert 'class="days-overdue"' in row[: row.index("</tr>")]
        assert 'href="/sites/Rome/patients"' in page.text  # the nav link

    @pytest.mark.parametrize(
        ("query", "found"),
        [
            ("q=rom-1", True),
            ("q=101", True),
            ("q=ERL", False),
            ("q=%25", False),  # a LIKE wildcard is a character, not "anything"
            ("status=active", True),
            ("status=withdrawn", False),
            ("protocol=cd19-car-t-pediatric-autoimmune", True),
            ("protocol=aav-liver-5-year", False),
            ("overdue=1", True),
        ],
    )
    def test_search_and_filters(
        self, pages: TestClient, investigator: str, query: str, found: bool
    ) -> None:
        page = pages.get(f"/sites/Rome/patients?{query}")
        assert page.status_code == 200
        assert ('href="/patients/ROM-101"' in page.text) is found
        assert ("No patient matches." in page.text) is not found

    def test_another_sites_list_is_not_found_and_pharmacovigilance_may_not(
        self, pages: TestClient, investigator: str
    ) -> None:
        assert pages.get("/sites/Erlangen/patients").status_code == 404
        pages.cookies.clear()
        sign_in_as(pages, "pharmacovigilance")
        assert pages.get("/sites/Rome/patients").status_code == 403


class TestEnrol:
    def test_preview_shows_the_calendar_and_writes_nothing(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        form = pages.get("/patients/new?site=Rome")
        assert form.status_code == 200
        before = _counts(site_db)
        page = pages.post("/patients/new", data={**ENROL, "csrf_token": nurse, "intent": "preview"})
        assert page.status_code == 200
        assert "The calendar enrolling would create" in page.text
        assert re.search(r"<strong>\d+ assessments</strong> for ROM-120", page.text)
        assert re.search(r"<li>vector-safety <strong>\d+</strong></li>", page.text)
        assert 'value="rom-120"' in page.text  # what was typed, kept
        assert _counts(site_db) == before

    def test_enrol_saves_the_patient_with_its_audit_row(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        done = pages.post("/patients/new", data={**ENROL, "csrf_token": nurse, "intent": "enrol"})
        assert done.status_code == 303
        assert done.headers["location"] == "/patients/ROM-120"
        assert pages.get("/patients/ROM-120").status_code == 200
        assert _patient(site_db, "ROM-120") is not None
        (entry,) = [e for e in _audit(site_db, "enroll") if e.entity_key == "ROM-120"]
        assert entry.actor == USERS["nurse"][0]

    @pytest.mark.parametrize(
        ("change", "field", "status", "message"),
        [
            ({"infusion_date": "2015-01-01"}, "infusion_date", 422, "before the birth date"),
            ({"infusion_date": "2026-11-26"}, "infusion_date", 422, "is in the future"),
            ({"birth_date": ""}, "birth_date", 422, "give the birth date"),
            ({"birth_date": "2015-02-30"}, "birth_date", 422, "is not a date"),
            ({"study_id": "ROM 1"}, "study_id", 422, "not a pseudonymous id"),
            ({"study_id": "ROM-101"}, "study_id", 409, "already enrolled"),
            ({"diagnosis": "hemophilia_b"}, "diagnosis", 422, "not covered by"),
            ({"site": "Erlangen"}, "site", 404, "no site"),
        ],
    )
    def test_a_refused_enrolment_keeps_every_value_and_marks_the_field(
        self,
        pages: TestClient,
        site_db: SiteDb,
        nurse: str,
        change: dict[str, str],
        field: str,
        status: int,
        message: str,
    ) -> None:
        before = _counts(site_db)
        sent = {**ENROL, **change}
        page = pages.post("/patients/new", data={**sent, "csrf_token": nurse, "intent": "enrol"})
        assert page.status_code == status
        tag = _field(page.text, field)
        assert 'aria-invalid="true"' in tag
        assert f"e-{field}" in tag
        beside = rf'<p class="field-error" id="e-{field}">[^<]*{message}'
        assert re.search(beside, page.text, re.IGNORECASE)  # messages start a sentence
        for name in ("study_id", "birth_date", "infusion_date"):
            assert f'value="{sent[name]}"' in _field(page.text, name)
        assert _counts(site_db) == before

    def test_a_form_without_its_csrf_token_changes_nothing(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        page = pages.post("/patients/new", data={**ENROL, "intent": "enrol"})
        assert page.status_code == 403
        assert _patient(site_db, "ROM-120") is None


class TestReinfusion:
    def _post(self, pages: TestClient, csrf: str, **fields: str) -> httpx.Response:
        data = {"csrf_token": csrf, "version": "1", "infusion_date": "2026-06-01", **fields}
        response: httpx.Response = pages.post("/patients/ROM-101/infusions", data=data)
        return response

    def test_the_patient_page_links_to_it(self, pages: TestClient, nurse: str) -> None:
        page = pages.get("/patients/ROM-101")
        assert 'href="/patients/ROM-101/infusions/new"' in page.text
        assert pages.get("/patients/ROM-101/infusions/new").status_code == 200

    def test_preview_shows_the_difference_and_writes_nothing(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        page = self._post(pages, nurse, intent="preview")
        assert page.status_code == 200
        assert "What saving changes in the calendar" in page.text
        assert re.search(r"\d+ added, \d+ moved, \d+ cancelled", page.text)
        assert 'class="diff-added"' in page.text
        assert "Save the re-infusion" in page.text
        patient = _patient(site_db, "ROM-101")
        assert patient is not None
        assert patient.version == 1
        assert not _audit(site_db, "add_infusion")

    def test_save_adds_the_infusion_and_says_what_changed(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        done = self._post(pages, nurse, intent="save")
        assert done.status_code == 303
        assert done.headers["location"] == "/patients/ROM-101"
        with read_session(site_db.engine) as session:
            numbers = session.execute(select(col(Infusion.number))).scalars().all()
        assert sorted(numbers) == [1, 1, 2]  # ERL-101's and ROM-101's two
        (entry,) = _audit(site_db, "add_infusion")
        assert entry.actor == USERS["nurse"][0]
        page = pages.get("/patients/ROM-101")
        assert "Re-infusion on 1 Jun 2026 saved for ROM-101" in page.text

    def test_a_stale_version_saves_nothing_and_says_why(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        page = self._post(pages, nurse, intent="save", version="0")
        assert page.status_code == 412
        assert "someone changed ROM-101 after you opened this form" in page.text
        assert 'value="2026-06-01"' in page.text
        assert not _audit(site_db, "add_infusion")

    def test_a_date_before_the_last_infusion_is_refused_beside_the_field(
        self, pages: TestClient, nurse: str
    ) -> None:
        page = self._post(pages, nurse, infusion_date="2023-01-01")
        assert page.status_code == 422
        assert 'aria-invalid="true"' in _field(page.text, "infusion_date")
        assert "must come after the last infusion" in page.text


class TestStatus:
    def _post(self, pages: TestClient, csrf: str, **fields: str) -> httpx.Response:
        data = {
            "csrf_token": csrf,
            "version": "1",
            "status": "withdrawn",
            "date": "2026-11-20",
            "reason": "moved abroad, consent withdrawn",
            **fields,
        }
        response: httpx.Response = pages.post("/patients/ROM-101/status", data=data)
        return response

    def test_a_nurse_is_told_in_words_who_may(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        assert (
            "Only investigators can change a patient's status."
            in pages.get("/patients/ROM-101").text
        )
        page = pages.get("/patients/ROM-101/status")
        assert page.status_code == 403
        assert "Only investigators can change a patient&#39;s status." in page.text
        assert self._post(pages, nurse).status_code == 403
        assert not _audit(site_db, "change_status")

    def test_an_investigator_withdraws_with_a_reason(
        self, pages: TestClient, site_db: SiteDb, investigator: str
    ) -> None:
        assert 'href="/patients/ROM-101/status"' in pages.get("/patients/ROM-101").text
        assert pages.get("/patients/ROM-101/status").status_code == 200
        done = self._post(pages, investigator)
        assert done.status_code == 303
        patient = _patient(site_db, "ROM-101")
        assert patient is not None
        assert (patient.status, str(patient.status_on)) == ("withdrawn", "2026-11-20")
        (entry,) = _audit(site_db, "change_status")
        assert (entry.actor, entry.reason) == (
            USERS["investigator"][0],
            "moved abroad, consent withdrawn",
        )
        assert "ROM-101: withdrawn since 20 Nov 2026" in pages.get("/patients/ROM-101").text

    @pytest.mark.parametrize(
        ("change", "field", "message"),
        [
            ({"reason": "  "}, "reason", "a status change needs a reason"),
            ({"date": "2026-12-01"}, "date", "is in the future"),
            ({"date": ""}, "date", "give the date of the change"),
            ({"status": "transferred"}, "to_site", "a transfer needs the site"),
            ({"status": "transferred", "to_site": "Erlangen"}, "to_site", "you do not work at"),
        ],
    )
    def test_a_refused_change_keeps_the_values(
        self,
        pages: TestClient,
        site_db: SiteDb,
        investigator: str,
        change: dict[str, str],
        field: str,
        message: str,
    ) -> None:
        page = self._post(pages, investigator, **change)
        assert page.status_code == 422
        assert message in page.text.lower()
        assert 'aria-invalid="true"' in _field(page.text, field)
        assert 'value="moved abroad, consent withdrawn"' in page.text or field == "reason"
        assert not _audit(site_db, "change_status")

    def test_an_admin_transfers_to_another_site(self, pages: TestClient, site_db: SiteDb) -> None:
        csrf = _signed_in(pages, "admin")
        done = self._post(pages, csrf, status="transferred", to_site="Erlangen")
        assert done.status_code == 303
        patient = _patient(site_db, "ROM-101")
        assert patient is not None
        assert (patient.site_id, patient.status) == ("Erlangen", "active")

    def test_a_stale_version_saves_nothing(
        self, pages: TestClient, site_db: SiteDb, investigator: str
    ) -> None:
        page = self._post(pages, investigator, version="7")
        assert page.status_code == 412
        assert "someone changed ROM-101" in page.text
        assert 'name="version" value="1"' in page.text  # the form now has the current version
        assert not _audit(site_db, "change_status")

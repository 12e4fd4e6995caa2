"""The outcome forms as a nurse uses them: what saving would start, an early completion
asked about first, one's own slip undone within 15 minutes (over HTTP, on SQLite)."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col
from support.web_support import SiteDb, csrf_of, sign_in_as

from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session
from surveillance.records.adverse_events import AdverseEventCase
from surveillance.records.patients import Assessment, OutcomeRecord, Patient

# ROM-101, infused 2024-01-31, today 2026-11-25: the month-3 RCL test is long overdue.
RCL_1 = "ROM-101:1:rcl_test:1"
RCL_NAME = "Replication-competent lentivirus (RCL) test of PBMC"


@pytest.fixture
def nurse(pages: TestClient) -> str:
    sign_in_as(pages, "nurse")
    return csrf_of(pages.get("/sites/Rome/due"))


def _post(pages: TestClient, key: str, csrf: str, **fields: str) -> httpx.Response:
    data = {"csrf_token": csrf, "version": "1", "outcome": "completed", **fields}
    data.setdefault("next", "/sites/Rome/due")
    response: httpx.Response = pages.post(f"/assessments/{key}/outcome", data=data)
    return response


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


def _written(db: SiteDb) -> tuple[int, int, int]:
    """Outcome rows, audit rows, safety cases: what a page that saves nothing leaves alone."""
    with read_session(db.engine) as session:
        return (
            len(session.execute(select(col(OutcomeRecord.id))).all()),
            len(session.execute(select(col(AuditEntry.id))).all()),
            len(session.execute(select(col(AdverseEventCase.case_id))).all()),
        )


def _first_upcoming(page: str) -> str:
    table = page[page.index('id="table-upcoming"') :]
    found = re.search(r'data-key="([^"]+)"', table)
    assert found is not None
    return found.group(1)


class TestPreview:
    def test_checking_a_positive_rcl_says_what_it_starts_and_writes_nothing(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        before = _written(site_db)
        response = _post(pages, RCL_1, nurse, on="2024-05-01", result="positive", intent="preview")
        assert response.status_code == 200
        assert _written(site_db) == before
        assert _row(site_db, RCL_1).status == "pending"
        row = response.text[response.text.index(f'data-key="{RCL_1}"') :]
        box = row[row.index('class="effects"') : row.index("</div>", row.index('class="effects"'))]
        assert "Saving this will:" in box
        assert "positive: starts" in box
        assert "opens a serious safety case" in box
        assert '<option value="positive" selected>' in row  # still as typed, ready to save

        saved = _post(pages, RCL_1, nurse, on="2024-05-01", result="positive")
        assert saved.status_code == 303
        assert _row(site_db, RCL_1).result == "positive"
        assert _written(site_db)[2] == before[2] + 1

    @pytest.mark.parametrize(
        ("language", "said"),
        [
            ("it", ("Salvando si otterrà:", "positive: avvia", "apre un caso di sicurezza grave")),
            ("de", ("Das Speichern bewirkt:", "positive: startet", "schwerwiegenden Sicherheit")),
        ],
    )
    def test_what_it_starts_in_the_nurse_s_language(
        self, pages: TestClient, nurse: str, language: str, said: tuple[str, ...]
    ) -> None:
        data = {"csrf_token": nurse, "version": "1", "outcome": "completed", "on": "2024-05-01"}
        data |= {"result": "positive", "intent": "preview", "next": "/sites/Rome/due"}
        response = pages.post(
            f"/assessments/{RCL_1}/outcome", data=data, headers={"Accept-Language": language}
        )
        assert response.status_code == 200
        row = response.text[response.text.index(f'data-key="{RCL_1}"') :]
        box = row[row.index('class="effects"') : row.index("</div>", row.index('class="effects"'))]
        assert [words for words in said if words not in box] == []
        assert " starts " not in box
        assert "safety case" not in box
        assert "2024-05-01" not in box  # dates in words

    def test_checking_a_refused_value_shows_the_error_instead(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        response = _post(pages, RCL_1, nurse, on="2024-05-01", result="pos", intent="preview")
        assert response.status_code == 422
        assert "is not one of the coded values" in response.text


class TestEarlyCompletion:
    def test_completed_today_before_the_window_opens_asks_first(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        key = _first_upcoming(pages.get("/sites/Rome/due").text)
        version = str(_row(site_db, key).version)
        before = _written(site_db)
        asked = _post(pages, key, nurse, quick="1", version=version)
        assert asked.status_code == 200
        assert _written(site_db) == before
        assert _row(site_db, key).status == "pending"
        assert "Its window opens on" in asked.text
        assert "protocol deviation" in asked.text

        confirmed = _post(pages, key, nurse, quick="1", version=version, confirm_early="1")
        assert confirmed.status_code == 303
        row = _row(site_db, key)
        assert (row.status, str(row.performed_on), row.protocol_deviation) == (
            "completed",
            "2026-11-25",
            True,
        )

    def test_a_completion_inside_the_window_is_not_asked_about(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        assert _post(pages, RCL_1, nurse, on="2024-05-01").status_code == 303


class TestUndo:
    def test_the_author_undoes_a_one_click_completion_without_a_reason(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        assert _post(pages, RCL_1, nurse, quick="1").status_code == 303
        page = pages.get("/sites/Rome/due").text
        assert "Recorded by you in the last 15 minutes" in page
        undo_form = f'action="/assessments/{RCL_1.replace(":", "%3A")}/undo"'
        assert undo_form in page
        response = pages.post(
            f"/assessments/{RCL_1}/undo",
            data={"csrf_token": nurse, "version": "2", "next": "/sites/Rome/due"},
        )
        assert (response.status_code, response.headers["location"]) == (303, "/sites/Rome/due")
        row = _row(site_db, RCL_1)
        assert (row.status, row.performed_on, row.version) == ("pending", None, 3)
        page = pages.get("/sites/Rome/due").text
        assert f"Undone: ROM-101 · {RCL_NAME} is pending again." in page
        assert undo_form not in page
        assert f'data-key="{RCL_1}"' in page  # back on the list

    def test_someone_elses_recording_is_not_offered_and_is_refused(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        assert _post(pages, RCL_1, nurse, quick="1").status_code == 303
        pages.post("/logout", data={"csrf_token": nurse})
        sign_in_as(pages, "investigator")
        other = csrf_of(pages.get("/sites/Rome/due"))
        assert "Recorded by you" not in pages.get("/sites/Rome/due").text
        response = pages.post(
            f"/assessments/{RCL_1}/undo",
            data={"csrf_token": other, "version": "2", "next": "/sites/Rome/due"},
        )
        assert response.status_code == 303
        assert _row(site_db, RCL_1).status == "completed"
        assert "only its author can undo it" in pages.get("/sites/Rome/due").text


class TestCorrectionPreview:
    def test_checking_a_correction_says_what_it_cancels_and_writes_nothing(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        assert _post(pages, RCL_1, nurse, on="2024-05-01", result="positive").status_code == 303
        before = _written(site_db)
        response = pages.post(
            f"/assessments/{RCL_1}/correction",
            data={
                "csrf_token": nurse,
                "version": "2",
                "outcome": "completed",
                "on": "2024-05-01",
                "result": "negative",
                "reason": "",
                "intent": "preview",
                "next": "/patients/ROM-101",
            },
        )
        assert response.status_code == 200
        assert _written(site_db) == before
        assert "Correcting this will:" in response.text
        assert "corrected to negative: stops" in response.text
        assert '<form method="post" action="/assessments/' in response.text  # its own page


ITALIAN = {"Accept-Language": "it-IT,it;q=0.9"}


def _flash(page: str) -> str:
    found = re.search(r'class="flash flash-(?:success|error)"[^>]*>(.*?)</', page, re.DOTALL)
    assert found is not None, "no message on the page"
    return found.group(1)


class TestMessagesInTheReadersLanguage:
    def test_recorded_undone_and_refused_in_italian(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        """The messages after a recording, an undo and a stale form, in the reader's
        language: the assessment's name, the outcome and the date too."""
        saved = pages.post(
            f"/assessments/{RCL_1}/outcome",
            data={"csrf_token": nurse, "version": "1", "outcome": "completed", "quick": "1",
                  "next": "/sites/Rome/due"},
            headers=ITALIAN,
        )  # fmt: skip
        assert saved.status_code == 303
        recorded = _flash(pages.get("/sites/Rome/due", headers=ITALIAN).text)
        assert recorded.startswith("Registrato: ROM-101 · "), recorded
        assert "25 nov 2026" in recorded
        assert "Recorded" not in recorded
        assert " on " not in recorded
        stale = pages.post(
            f"/assessments/{RCL_1}/undo",
            data={"csrf_token": nurse, "version": "1", "next": "/sites/Rome/due"},
            headers=ITALIAN,
        )
        assert stale.status_code == 303
        refused = _flash(pages.get("/sites/Rome/due", headers=ITALIAN).text)
        assert refused.startswith(f"Non è stato annullato nulla per {RCL_1}: qualcuno"), refused
        undone = pages.post(
            f"/assessments/{RCL_1}/undo",
            data={"csrf_token": nurse, "version": "2", "next": "/sites/Rome/due"},
            headers=ITALIAN,
        )
        assert undone.status_code == 303
        said = _flash(pages.get("/sites/Rome/due", headers=ITALIAN).text)
        # The assessment by its Italian name, and nothing more: done without a result it
        # started nothing, so undoing it takes nothing back.
        rcl_it = "Test per lentivirus competente per la replicazione (RCL) su PBMC"
        assert said == f"Annullato: ROM-101 · {rcl_it} è di nuovo in attesa.", said

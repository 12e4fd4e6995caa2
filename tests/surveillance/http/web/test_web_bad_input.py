"""Issue 16 in the pages: an impossible date or number in a URL is a page that says so
(never a 500), and a form with a control character or a lone surrogate shows the error
beside the field, keeps what was typed, and writes nothing.

Every request below answered 500 (or was accepted) on main before kit.text and kit.bounds.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from support.web_support import SiteDb, csrf_of, sign_in_as

from surveillance.kit.db import read_session
from surveillance.records.adverse_events import AdverseEventCase

PNEUMONIA = {
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
    "narrative": "Admitted with fever.",
}


@pytest.fixture
def nurse(pages: TestClient) -> str:
    sign_in_as(pages, "nurse")
    return csrf_of(pages.get("/sites/Rome/due"))


def _cases(db: SiteDb) -> int:
    with read_session(db.engine) as session:
        return int(session.execute(select(func.count()).select_from(AdverseEventCase)).scalar_one())


def test_the_due_list_far_in_the_future_shows_today_and_says_why(
    pages: TestClient, nurse: str
) -> None:
    page = pages.get("/sites/Rome/due", params={"on": "9999-12-31"})
    assert page.status_code == 200
    assert "9999-12-31 is after" in page.text
    assert "showing today, 2026-11-25" in page.text


@pytest.mark.parametrize("on", ["9999-12-31", "0001-01-01"])
def test_the_patient_page_on_an_impossible_day_is_a_422_page(
    pages: TestClient, nurse: str, on: str
) -> None:
    page = pages.get("/patients/ROM-101", params={"on": on}, headers={"Accept": "text/html"})
    assert page.status_code == 422
    assert "<html" in page.text
    assert on in page.text


@pytest.mark.parametrize("path", ["/mail/99999999999999999999", "/mail/0"])
def test_a_mail_id_no_row_can_have_is_not_found(pages: TestClient, nurse: str, path: str) -> None:
    assert pages.get(path, headers={"Accept": "text/html"}).status_code == 404


def test_paging_mail_beyond_any_id_is_refused(pages: TestClient, nurse: str) -> None:
    page = pages.get("/mail", params={"before": str(2**70)}, headers={"Accept": "text/html"})
    assert page.status_code == 422


def test_a_control_character_in_the_url_is_refused(pages: TestClient, nurse: str) -> None:
    page = pages.get("/patients/ROM-101%00", headers={"Accept": "text/html"})
    assert page.status_code in (404, 422)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("term", "Pneumonia\r\nBcc: all@example.org"),
        ("term", "\u202eainomuenP"),
        ("narrative", "Admitted with fever.\x00"),
        ("narrative", "Admitted \x1b[2J with fever."),
    ],
)
def test_a_form_with_a_control_character_shows_the_error_beside_the_field_and_keeps_it(
    pages: TestClient, site_db: SiteDb, nurse: str, field: str, value: str
) -> None:
    before = _cases(site_db)
    data = {"csrf_token": nurse, **PNEUMONIA, field: value}
    response = pages.post("/patients/ROM-101/adverse-events", data=data)
    assert response.status_code == 422
    assert _cases(site_db) == before
    assert "Nothing was saved" in response.text
    assert "control" in response.text
    assert re.search(rf'id="ae-{field}"[^>]*aria-invalid="true"', response.text), field
    kept = "Pneumonia" if field == "narrative" else "Admitted with fever."
    assert kept in response.text  # the other entries are kept

"""A patient's audit trail: the newest 50 rows on the patient page, the whole trail on its
own page (newest first, 100 a page, keyset pages both ways), the patient page's access
rules, and in the reader's language (issue 14)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col
from support.web_support import NOW, SiteDb, sign_in_as

import rules
from surveillance.kit import audit
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.patients.changes import change_status
from surveillance.records.queries import get_patient

EXTRA = 230  # with the enrolment's row: 231, three pages of the whole trail
HEADERS = {
    "it": {"Accept-Language": "it-IT,it;q=0.9"},
    "de": {"Accept-Language": "de-DE,de;q=0.9"},
}


def _bookings(db: SiteDb, count: int) -> None:
    """``count`` appointments booked for ROM-101, as ``patients.appointments`` audits them."""
    with write_session(db.engine) as session:
        patient = get_patient(session, "ROM-101")
        facts = [
            audit.AuditFact(
                actor="nurse@rome.example",
                action="reschedule",
                entity="assessment",
                entity_key=f"ROM-101:1:cbc:{n}",
                patient_id=patient.id,
                reason=None,
                old={"appointment_on": None},
                new={"appointment_on": "2026-12-01"},
            )
            for n in range(1, count + 1)
        ]
        audit.record_many(session, facts, NOW)


def _trail_ids(db: SiteDb) -> list[int]:
    """Every row about ROM-101, newest first."""
    with read_session(db.engine) as session:
        patient = get_patient(session, "ROM-101")
        statement = (
            select(col(AuditEntry.id))
            .where(col(AuditEntry.patient_id) == patient.id)
            .order_by(col(AuditEntry.id).desc())
        )
        return list(session.execute(statement).scalars())


def _keys(page: str) -> list[str]:
    """The Item column of the trail's rows, in the page's order."""
    table = page[page.index('id="audit-trail"') : page.index("</table>", page.index("audit-trail"))]
    return re.findall(r'<td class="key" data-label="[^"]*">([^<]*)</td>', table)


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', page)
    return found.group(1).replace("&amp;", "&") if found else None


@pytest.fixture
def long_trail(site_db: SiteDb) -> list[str]:
    """ROM-101's 231 rows, newest first, by their Item column."""
    _bookings(site_db, EXTRA)
    return [f"ROM-101:1:cbc:{n}" for n in range(EXTRA, 0, -1)] + ["ROM-101"]


def test_the_patient_page_shows_the_newest_50_and_links_the_whole_trail(
    pages: TestClient, long_trail: list[str]
) -> None:
    sign_in_as(pages, "nurse")
    page = pages.get("/patients/ROM-101").text
    assert _keys(page) == long_trail[:50]
    assert "newest 50 of 231" in page
    assert '<a href="/patients/ROM-101/audit">Full audit trail (231 entries)</a>' in page


def test_the_whole_trail_pages_through_every_row_both_ways(
    pages: TestClient, site_db: SiteDb, long_trail: list[str]
) -> None:
    sign_in_as(pages, "nurse")
    ids = _trail_ids(site_db)
    first = pages.get("/patients/ROM-101/audit")
    assert first.status_code == 200
    assert "231 entries" in first.text
    assert _keys(first.text) == long_trail[:100]
    assert (_link(first.text, "prev"), _link(first.text, "next")) == (
        None,
        f"/patients/ROM-101/audit?before={ids[99]}",
    )
    second = pages.get(_link(first.text, "next") or "")
    assert _keys(second.text) == long_trail[100:200]
    third = pages.get(_link(second.text, "next") or "")
    assert _keys(third.text) == long_trail[200:]  # the enrolment last
    assert _link(third.text, "next") is None
    back = pages.get(_link(third.text, "prev") or "")
    assert _keys(back.text) == long_trail[100:200]
    newest = pages.get(_link(back.text, "prev") or "")
    assert _keys(newest.text) == long_trail[:100]
    assert _link(newest.text, "prev") is None


@pytest.mark.parametrize("cursor", ["before=abc", "after=-1", "before=99999999999999999999"])
def test_a_cursor_that_is_not_a_row_id_shows_the_newest(
    pages: TestClient, long_trail: list[str], cursor: str
) -> None:
    sign_in_as(pages, "nurse")
    page = pages.get(f"/patients/ROM-101/audit?{cursor}")
    assert page.status_code == 200
    assert _keys(page.text) == long_trail[:100]


def test_a_short_trail_is_one_page_and_the_patient_page_shows_it_all(pages: TestClient) -> None:
    sign_in_as(pages, "nurse")
    page = pages.get("/patients/ROM-101/audit")
    assert _keys(page.text) == ["ROM-101"]
    assert (_link(page.text, "prev"), _link(page.text, "next")) == (None, None)
    assert "Full audit trail (1 entry)" in pages.get("/patients/ROM-101").text


@pytest.mark.parametrize(
    ("role", "path"),
    [
        ("nurse", "/patients/ERL-101"),  # another site's patient
        ("nurse", "/patients/ROM-999"),  # no such patient
        ("pharmacovigilance", "/patients/ROM-101"),  # not a clinical role
        ("admin", "/patients/ERL-101"),  # every site
    ],
)
def test_who_sees_it_is_who_sees_the_patient(pages: TestClient, role: str, path: str) -> None:
    sign_in_as(pages, role)
    expected = pages.get(path).status_code
    assert pages.get(f"{path}/audit").status_code == expected
    assert expected in (200, 403, 404)


def test_signed_out_it_asks_to_sign_in(pages: TestClient) -> None:
    response = pages.get("/patients/ROM-101/audit")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


@pytest.mark.parametrize(
    ("locale", "words", "english"),
    [
        (
            "it",
            ["Registro delle modifiche del paziente ROM-101", "cambio di stato",
             "arruolamento", "calendario", "ritirato il 1 nov 2026: moved abroad",
             'data-label="Chi"', "stato: attivo → ritirato"],
            ["change status", "enroll", "withdrawn on", "calendar change", "When (UTC)"],
        ),
        (
            "de",
            ["Änderungsprotokoll von Patient ROM-101", "Statusänderung", "Einschluss",
             "ausgeschieden am 1. Nov. 2026: moved abroad", 'data-label="Wer"'],
            ["change status", "enroll", "withdrawn on", "calendar change", "When (UTC)"],
        ),
    ],
)  # fmt: skip
def test_in_the_readers_language(
    pages: TestClient,
    site_db: SiteDb,
    registry: rules.ProtocolRegistry,
    locale: str,
    words: list[str],
    english: list[str],
) -> None:
    """A withdrawal: its action, the calendar change it caused and why, in the page's
    language; the reason typed ("moved abroad") as typed."""
    with write_session(site_db.engine) as session:
        change_status(
            session,
            study_id="ROM-101",
            status="withdrawn",
            on=date(2026, 11, 1),
            reason="moved abroad",
            actor="investigator@rome.example",
            registry=registry,
            now=NOW,
        )
    sign_in_as(pages, "nurse")
    whole = pages.get("/patients/ROM-101/audit", headers=HEADERS[locale]).text
    shown = pages.get("/patients/ROM-101", headers=HEADERS[locale]).text
    assert [w for w in words if w not in whole] == []
    assert [w for w in english if w in whole] == []
    trail = shown[shown.index('id="h-audit"') :]
    assert [w for w in english if w in trail] == []
    # The cancelled rows say why in the page's language too.
    why = {"it": "ritirato il 1 nov 2026: moved abroad", "de": "ausgeschieden am 1. Nov. 2026"}
    calendar = shown[: shown.index('id="h-audit"')]
    assert why[locale] in calendar
    assert "withdrawn on 2026-11-01" not in calendar
    item = pages.get(
        "/patients/ROM-101/assessments/ROM-101:1:bcell_cd19:11", headers=HEADERS[locale]
    )
    assert item.status_code == 200
    assert why[locale] in item.text

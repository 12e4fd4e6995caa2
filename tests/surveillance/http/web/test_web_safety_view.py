"""The safety view for pharmacovigilance: read-only, pseudonymous as the feed.

ROM-101 was born 2014-03-01 and infused 2024-01-31: neither date may appear. Cases are
recorded by the Rome nurse, whose address stays at the site as well.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from support.web_support import NOW, USERS, SiteDb, csrf_of, sign_in_as

import rules
from surveillance.adverse_events.acks import record_ack
from surveillance.adverse_events.cases import add_follow_up, create_case
from surveillance.adverse_events.facts import CaseFacts
from surveillance.kit.db import write_session
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    Seriousness,
)

NURSE = USERS["nurse"][0]
SAFETY = USERS["pharmacovigilance"][0]
SEPSIS = CaseFacts(
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
RASH = CaseFacts(
    onset_date=date(2026, 11, 1),
    awareness_date=date(2026, 11, 2),
    term="Rash",
    category=Category.other,
    grade=1,
    grade_scale=GradeScale.ctcae_v5,
    serious=False,
    seriousness_criteria=(),
    relatedness=Relatedness.unlikely_related,
    expected=True,
    outcome=CaseOutcome.recovered,
)


@pytest.fixture
def cases(site_db: SiteDb) -> tuple[str, str]:
    """A non-serious rash (ROM-101-AE01, two days ago), then a serious sepsis (ERL-101)
    with a follow-up and a rejection of version 1."""
    registry = rules.ProtocolRegistry.from_directory()
    with write_session(site_db.engine) as session:
        rash = create_case(
            session,
            study_id="ROM-101",
            facts=RASH,
            actor=NURSE,
            registry=registry,
            now=NOW - timedelta(days=2),
        ).case.case_id
        sepsis = create_case(
            session,
            study_id="ERL-101",
            facts=SEPSIS,
            actor=NURSE,
            registry=registry,
            now=NOW - timedelta(hours=5),
        ).case.case_id
        record_ack(
            session,
            consumer=SAFETY,
            case_id=sepsis,
            version=1,
            status="AR",
            message="MedDRA code missing",
            now=NOW - timedelta(hours=4),
        )
        add_follow_up(
            session,
            case_id=sepsis,
            facts=replace(SEPSIS, outcome=CaseOutcome.recovered),
            actor=NURSE,
            registry=registry,
            now=NOW - timedelta(hours=3),
            expected_version=1,
        )
    return rash, sepsis


def _rows(page: httpx.Response) -> list[str]:
    return re.findall(r'<tr data-case="([^"]+)"', page.text)


def _never_identifying(page: httpx.Response) -> None:
    for secret in ("2014-03-01", "2013-06-01", "2024-01-31", "2025-06-30", NURSE):
        assert secret not in page.text, secret


class TestList:
    def test_pharmacovigilance_lands_on_every_case_latest_change_first(
        self, pages: TestClient, cases: tuple[str, str]
    ) -> None:
        rash, sepsis = cases
        landing = sign_in_as(pages, "pharmacovigilance")
        assert landing.headers["location"] == "/safety"
        page = pages.get("/safety")
        assert page.status_code == 200
        assert _rows(page) == [sepsis, rash]
        assert f'href="/safety/cases/{sepsis}"' in page.text
        assert "ERL-101" in page.text
        assert "male, 13 y at onset · Erlangen" in page.text
        _never_identifying(page)

    def test_filters_serious_and_not_acknowledged(
        self, pages: TestClient, site_db: SiteDb, cases: tuple[str, str]
    ) -> None:
        rash, sepsis = cases
        sign_in_as(pages, "pharmacovigilance")
        assert _rows(pages.get("/safety?serious=1")) == [sepsis]
        assert _rows(pages.get("/safety?unacknowledged=1")) == [sepsis, rash]
        with write_session(site_db.engine) as session:
            record_ack(
                session,
                consumer=SAFETY,
                case_id=rash,
                version=1,
                status="AA",
                message=None,
                now=NOW,
            )
        assert _rows(pages.get("/safety?unacknowledged=1")) == [sepsis]
        # An acceptance of an older version does not acknowledge the latest.
        with write_session(site_db.engine) as session:
            record_ack(
                session,
                consumer=SAFETY,
                case_id=sepsis,
                version=1,
                status="AA",
                message=None,
                now=NOW,
            )
        assert _rows(pages.get("/safety?unacknowledged=1&serious=1")) == [sepsis]
        page = pages.get("/safety?unacknowledged=1&serious=1")
        assert 'name="serious" type="checkbox" value="1" checked' in page.text

    def test_nothing_on_it_writes(self, pages: TestClient, cases: tuple[str, str]) -> None:
        sign_in_as(pages, "pharmacovigilance")
        for path in ("/safety", f"/safety/cases/{cases[1]}"):
            forms = re.findall(r'<form method="post" action="([^"]+)"', pages.get(path).text)
            assert forms == ["/language", "/logout"], path  # the header's own forms


class TestCase:
    def test_the_versions_and_every_answer(self, pages: TestClient, cases: tuple[str, str]) -> None:
        _, sepsis = cases
        sign_in_as(pages, "pharmacovigilance")
        page = pages.get(f"/safety/cases/{sepsis}")
        assert page.status_code == 200
        assert f"<h1>Safety case {sepsis}</h1>" in page.text
        assert re.findall(r'class="version-head[^"]*" data-version="(\d)"', page.text) == [
            "1",
            "2",
        ]
        outcome = re.search(r'<tr data-field="outcome">(.*?)</tr>', page.text, re.DOTALL)
        assert outcome
        assert 'class="changed"' in outcome.group(1)
        answer = re.search(r'<tr data-version="1" class="ack-bad">(.*?)</tr>', page.text, re.DOTALL)
        assert answer
        assert "AR</strong> · rejected" in answer.group(1)
        assert "MedDRA code missing" in answer.group(1)
        assert "(older)" in answer.group(1)
        _never_identifying(page)

    def test_an_unknown_case_is_a_404_page(self, pages: TestClient) -> None:
        sign_in_as(pages, "pharmacovigilance")
        page = pages.get("/safety/cases/NOPE-AE01")
        assert page.status_code == 404
        assert "There is no adverse event" in page.text


class TestWhoMay:
    @pytest.mark.parametrize(("role", "status"), [("nurse", 403), ("investigator", 403)])
    def test_clinical_staff_use_the_site_pages_instead(
        self, pages: TestClient, cases: tuple[str, str], role: str, status: int
    ) -> None:
        sign_in_as(pages, role)
        assert pages.get("/safety").status_code == status
        assert pages.get(f"/safety/cases/{cases[0]}").status_code == status

    def test_admins_may_read_it(self, pages: TestClient, cases: tuple[str, str]) -> None:
        sign_in_as(pages, "admin")
        assert _rows(pages.get("/safety")) == [cases[1], cases[0]]
        assert pages.get(f"/safety/cases/{cases[1]}").status_code == 200

    def test_pharmacovigilance_cannot_write_anything(
        self, pages: TestClient, cases: tuple[str, str]
    ) -> None:
        rash, _ = cases
        sign_in_as(pages, "pharmacovigilance")
        csrf = csrf_of(pages.get("/safety"))
        posts = {
            "/admin/webhooks": {"url": "https://93.184.216.34/x", "events": "assessment.overdue"},
            "/sites/Rome/calendar": {},
            f"/adverse-events/{rash}/nullify": {"version": "1", "reason": "x"},
            "/patients/ROM-101/adverse-events": {"term": "x"},
            "/admin/alerts/retry": {"alert_id": "x"},
        }
        for path, data in posts.items():
            response = pages.post(path, data={"csrf_token": csrf, **data})
            assert response.status_code == 403, path
        assert pages.post("/safety", data={"csrf_token": csrf}).status_code == 405

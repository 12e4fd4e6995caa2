"""The due list's CSV download and calendar subscription, from the page.

The CSV is the API's file (one writer); the subscription link is the API's calendar feed
with a feed token made for the signed-in user and site, shown once.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col
from support.web_support import NOW, USERS, SiteDb, csrf_of, sign_in_as

from surveillance.accounts import auth
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.patients import due_csv

NURSE = USERS["nurse"][0]


@pytest.fixture
def nurse(pages: TestClient) -> str:
    sign_in_as(pages, "nurse")
    return csrf_of(pages.get("/sites/Rome/due"))


def _new_link(pages: TestClient, csrf: str) -> tuple[httpx.Response, str]:
    page = pages.post("/sites/Rome/calendar", data={"csrf_token": csrf})
    found = re.search(r'id="cal-url"[^>]*value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return page, found.group(1).replace("&amp;", "&")


def _fetch(pages: TestClient, url: str) -> httpx.Response:
    parts = urlsplit(url)
    response: httpx.Response = pages.get(f"{parts.path}?{parts.query}")
    return response


class TestCsv:
    def test_the_due_list_links_its_csv_and_calendar_page(
        self, pages: TestClient, nurse: str
    ) -> None:
        page = pages.get("/sites/Rome/due?status=overdue&on=2026-11-20")
        assert 'href="/sites/Rome/due.csv?on=2026-11-20&amp;status=overdue" download' in page.text
        assert 'href="/sites/Rome/calendar"' in page.text

    def test_the_csv_is_the_apis_file(self, pages: TestClient, site_db: SiteDb, nurse: str) -> None:
        with write_session(site_db.engine) as session:
            _, token = auth.create_token(session, email=NURSE, actor="test", now=NOW)
        api = pages.get(
            "/api/v1/sites/Rome/due?format=csv&on=2026-11-25",
            headers={"Authorization": f"Bearer {token}"},
        )
        download = pages.get("/sites/Rome/due.csv?on=2026-11-25")
        assert download.status_code == 200
        assert download.headers["content-type"] == due_csv.MEDIA_TYPE
        assert download.headers["content-disposition"] == (
            'attachment; filename="due-Rome-2026-11-25.csv"'
        )
        assert download.content == api.content
        lines = download.text.lstrip("\ufeff").splitlines()
        assert lines[0] == ",".join(due_csv.COLUMNS)
        assert len(lines) > 5
        assert all(",ROM-101," in line for line in lines[1:])

    def test_the_status_filter_narrows_it(self, pages: TestClient, nurse: str) -> None:
        rows = pages.get("/sites/Rome/due.csv?status=overdue").text.splitlines()[1:]
        assert rows
        assert all(row.startswith("overdue,") for row in rows)

    @pytest.mark.parametrize(
        ("role", "path", "status"),
        [
            ("nurse", "/sites/Erlangen/due.csv", 404),
            ("pharmacovigilance", "/sites/Rome/due.csv", 403),
            ("admin", "/sites/Erlangen/due.csv", 200),
        ],
    )
    def test_who_may_download(self, pages: TestClient, role: str, path: str, status: int) -> None:
        sign_in_as(pages, role)
        assert pages.get(path).status_code == status

    def test_signed_out_it_asks_to_sign_in(self, pages: TestClient) -> None:
        response = pages.get("/sites/Rome/due.csv")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


class TestCalendarSubscription:
    def test_a_nurse_makes_her_link_and_her_calendar_app_reads_it(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        page = pages.get("/sites/Rome/calendar")
        assert page.status_code == 200
        assert "secret token" in page.text
        assert "access log hides the token" in page.text
        made, url = _new_link(pages, nurse)
        assert made.status_code == 201
        assert "shown this once" in made.text
        assert url.startswith("http://127.0.0.1:8000/api/v1/sites/Rome/calendar.ics?token=feed_")
        webcal = "webcal://" + url.removeprefix("http://")
        assert f'href="{webcal.replace("&", "&amp;")}"' in made.text
        feed = _fetch(pages, url)
        assert feed.status_code == 200
        assert feed.headers["content-type"].startswith("text/calendar")
        assert "BEGIN:VCALENDAR" in feed.text
        with read_session(site_db.engine) as session:
            [token] = auth.feed_tokens(session, email=NURSE, site_id="Rome")
            statement = select(AuditEntry).where(col(AuditEntry.action) == "create_token")
            [entry] = session.execute(statement).scalars()
        assert entry.actor == NURSE
        assert url.split("token=")[1].startswith(token.prefix)
        listed = pages.get("/sites/Rome/calendar")
        assert f"<code>{token.prefix}…</code>" in listed.text
        assert url.split("token=")[1] not in listed.text  # shown once only

    def test_removing_a_link_stops_it_working(self, pages: TestClient, nurse: str) -> None:
        _, url = _new_link(pages, nurse)
        prefix = url.split("token=")[1][:12]
        response = pages.post(
            "/sites/Rome/calendar/revoke", data={"csrf_token": nurse, "prefix": prefix}
        )
        assert (response.status_code, response.headers["location"]) == (
            303,
            "/sites/Rome/calendar",
        )
        assert "no longer works" in pages.get("/sites/Rome/calendar").text
        assert _fetch(pages, url).status_code == 401

    def test_nobody_removes_another_users_link(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        with write_session(site_db.engine) as session:
            other, _ = auth.create_token(
                session, email=USERS["investigator"][0], actor="test", feed_site="Rome", now=NOW
            )
        response = pages.post(
            "/sites/Rome/calendar/revoke", data={"csrf_token": nurse, "prefix": other.prefix}
        )
        assert response.status_code == 404
        with read_session(site_db.engine) as session:
            assert auth.feed_tokens(session, email=USERS["investigator"][0], site_id="Rome")

    def test_without_the_form_token_no_link_is_made(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        assert pages.post("/sites/Rome/calendar", data={}).status_code == 403
        with read_session(site_db.engine) as session:
            assert auth.feed_tokens(session, email=NURSE, site_id="Rome") == []

    @pytest.mark.parametrize(("role", "status"), [("pharmacovigilance", 403), ("nurse", 404)])
    def test_not_for_another_site_or_pharmacovigilance(
        self, pages: TestClient, role: str, status: int
    ) -> None:
        sign_in_as(pages, role)
        csrf = csrf_of(pages.get("/access"))
        assert pages.get("/sites/Erlangen/calendar").status_code == status
        made = pages.post("/sites/Erlangen/calendar", data={"csrf_token": csrf})
        assert made.status_code == status

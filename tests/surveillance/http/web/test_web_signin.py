"""Signing in and out of the web pages: cookie flags, CSRF, redirects, messages."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from support.web_support import (
    PASSWORD,
    USERS,
    SiteDb,
    csrf_of,
    login_csrf,
    make_client,
    sign_in_as,
)

from surveillance.http.web.routes.signin import WRONG_CREDENTIALS
from surveillance.http.web.session import safe_next


def _session_cookie_header(response: httpx.Response) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith("ltfu_session=")]
    assert len(headers) == 1, headers
    return str(headers[0])


class TestRedirectToSignIn:
    def test_a_page_without_a_session_goes_to_the_sign_in_page_and_remembers_where(
        self, pages: TestClient
    ) -> None:
        response = pages.get("/sites/Rome/due?status=overdue")
        assert response.status_code == 303
        assert (
            response.headers["location"] == "/login?next=%2Fsites%2FRome%2Fdue%3Fstatus%3Doverdue"
        )

    def test_the_front_door_sends_strangers_to_sign_in(self, pages: TestClient) -> None:
        assert pages.get("/").headers["location"] == "/login"

    def test_an_unknown_session_cookie_is_dropped(self, pages: TestClient) -> None:
        pages.cookies.set("ltfu_session", "forged")
        response = pages.get("/dashboard")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
        assert any(h.startswith('ltfu_session=""') for h in response.headers.get_list("set-cookie"))

    def test_after_signing_in_the_remembered_page_opens(self, pages: TestClient) -> None:
        token = login_csrf(pages)
        response = pages.post(
            "/login",
            data={
                "email": USERS["nurse"][0],
                "password": PASSWORD,
                "csrf_token": token,
                "next": "/patients/ROM-101",
            },
        )
        assert response.headers["location"] == "/patients/ROM-101"

    @pytest.mark.parametrize(
        "target",
        ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
    )
    def test_a_next_that_leaves_the_site_is_ignored(self, pages: TestClient, target: str) -> None:
        token = login_csrf(pages)
        response = pages.post(
            "/login",
            data={
                "email": USERS["nurse"][0],
                "password": PASSWORD,
                "csrf_token": token,
                "next": target,
            },
        )
        assert response.headers["location"] == "/sites/Rome/due"


@pytest.mark.parametrize(
    ("role", "landing"),
    [
        ("nurse", "/sites/Rome/due"),
        ("investigator", "/dashboard"),
        ("admin", "/dashboard"),
        ("pharmacovigilance", "/safety"),
    ],
)
def test_each_role_lands_on_its_page(pages: TestClient, role: str, landing: str) -> None:
    response = sign_in_as(pages, role)
    assert (response.status_code, response.headers["location"]) == (303, landing)
    assert pages.get("/").headers["location"] == landing
    assert pages.get(landing).status_code == 200


class TestSessionCookie:
    def test_it_is_http_only_and_same_site_lax(self, pages: TestClient) -> None:
        header = _session_cookie_header(sign_in_as(pages, "nurse")).lower()
        assert "httponly" in header
        assert "samesite=lax" in header
        assert "path=/" in header
        assert "secure" not in header  # plain HTTP by default (127.0.0.1)

    def test_it_is_secure_when_the_settings_say_so(self, site_db: SiteDb) -> None:
        with make_client(site_db.url, secure_cookies=True) as client:
            header = _session_cookie_header(sign_in_as(client, "nurse")).lower()
        assert "secure" in header
        assert "httponly" in header
        assert "samesite=lax" in header


class TestWrongCredentials:
    @pytest.mark.parametrize(
        ("email", "password"),
        [(USERS["nurse"][0], "not the password"), ("nobody@rome.example", PASSWORD)],
    )
    def test_the_form_comes_back_with_a_message_and_no_session(
        self, pages: TestClient, email: str, password: str
    ) -> None:
        token = login_csrf(pages)
        response = pages.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )
        assert response.status_code == 200
        assert WRONG_CREDENTIALS in response.text
        assert 'role="alert"' in response.text
        assert f'value="{email}"' in response.text  # the email is kept, the password is not
        assert password not in response.text
        assert "ltfu_session" not in pages.cookies


class TestCsrf:
    def test_sign_in_without_the_double_submit_cookie_is_refused(self, pages: TestClient) -> None:
        token = login_csrf(pages)
        pages.cookies.delete("ltfu_login_csrf")
        response = pages.post(
            "/login", data={"email": USERS["nurse"][0], "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 403
        assert "nothing was changed" in response.text
        assert "ltfu_session" not in pages.cookies

    def test_sign_in_with_a_token_that_does_not_match_is_refused(self, pages: TestClient) -> None:
        login_csrf(pages)
        data = {"email": USERS["nurse"][0], "password": PASSWORD, "csrf_token": "forged"}
        assert pages.post("/login", data=data).status_code == 403

    def test_sign_out_without_the_session_token_is_refused_and_the_session_lives(
        self, pages: TestClient
    ) -> None:
        sign_in_as(pages, "nurse")
        response = pages.post("/logout", data={"csrf_token": "forged"})
        assert response.status_code == 403
        assert "<h1>Not allowed</h1>" in response.text
        assert pages.get("/sites/Rome/due").status_code == 200


def test_sign_out_ends_the_session(pages: TestClient) -> None:
    sign_in_as(pages, "nurse")
    token = csrf_of(pages.get("/sites/Rome/due"))
    response = pages.post("/logout", data={"csrf_token": token})
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert "You are signed out." in pages.get("/login").text
    assert pages.get("/sites/Rome/due").status_code == 303


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/sites/Rome/due?on=2026-01-01", "/sites/Rome/due?on=2026-01-01"),
        ("/", "/"),
        ("", None),
        (None, None),
        ("sites/Rome", None),
        ("//evil.example", None),
        ("/\\evil.example", None),
        ("https://evil.example/", None),
        ("/ok\r\nSet-Cookie: x=y", None),
    ],
)
def test_only_paths_on_this_site_are_followed(value: str | None, expected: str | None) -> None:
    assert safe_next(value) == expected


def test_a_page_refused_to_a_role_is_audited(pages: TestClient, site_db: SiteDb) -> None:
    from sqlalchemy import select

    from surveillance.kit.audit import AuditEntry
    from surveillance.kit.db import read_session

    sign_in_as(pages, "nurse")
    assert pages.get("/admin/alerts").status_code == 403
    with read_session(site_db.engine) as session:
        rows = session.execute(
            select(AuditEntry.actor, AuditEntry.entity_key).where(
                AuditEntry.action == "permission_denied"  # type: ignore[arg-type]
            )
        ).all()
    assert [tuple(r) for r in rows] == [(USERS["nurse"][0], "GET /admin/alerts")]


def test_sign_ins_are_audited(pages: TestClient, site_db: SiteDb) -> None:
    from sqlalchemy import select

    from surveillance.kit.audit import AuditEntry
    from surveillance.kit.db import read_session

    sign_in_as(pages, "nurse", password="not the password at all")
    sign_in_as(pages, "nurse")
    with read_session(site_db.engine) as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.actor).where(
                AuditEntry.action.in_(["sign_in", "sign_in_failed"])  # type: ignore[attr-defined]
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("sign_in_failed", USERS["nurse"][0]),
        ("sign_in", USERS["nurse"][0]),
    ]

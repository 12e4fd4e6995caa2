"""Helpers for the web page tests (imported by ``conftest.py`` and the tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from surveillance.config import Settings
from surveillance.http.app import create_app
from surveillance.main import build_runtime

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
CAR_T = "cd19-car-t-pediatric-autoimmune"
USERS = {
    "nurse": ("nurse@rome.example", ["Rome"]),
    "investigator": ("investigator@rome.example", ["Rome"]),
    "pharmacovigilance": ("pv@sponsor.example", []),
    "admin": ("admin@registry.example", []),
}


@dataclass
class SiteDb:
    """A fresh copy of the test database for one test."""

    engine: Engine
    url: str


def make_client(url: str, *, secure_cookies: bool = False) -> TestClient:
    settings = Settings(database_url=url, secure_cookies=secure_cookies)
    app = create_app(build_runtime(settings, clock=lambda: NOW))
    # Browsers send Secure cookies over HTTPS only; so does the test client.
    base_url = "https://testserver" if secure_cookies else "http://testserver"
    return TestClient(app, base_url=base_url, follow_redirects=False)


def login_csrf(client: TestClient) -> str:
    """Open the sign-in page; return the double-submit token it set and embedded."""
    page = client.get("/login")
    assert page.status_code == 200
    token: str | None = client.cookies.get("ltfu_login_csrf")
    assert token
    assert f'value="{token}"' in page.text
    return token


def csrf_of(page: httpx.Response) -> str:
    """The session's CSRF token, as the sign-out form in the header carries it."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in_as(client: TestClient, role: str, password: str = PASSWORD) -> httpx.Response:
    token = login_csrf(client)
    response: httpx.Response = client.post(
        "/login", data={"email": USERS[role][0], "password": password, "csrf_token": token}
    )
    return response

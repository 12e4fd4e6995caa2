"""Issue 13 over real HTTP (uvicorn on 127.0.0.1, on SQLite and PostgreSQL: ``live_api``):
what a TestClient cannot show. uvicorn trusts ``X-Forwarded-Proto`` from 127.0.0.1 (as
from a reverse proxy on the same host) and writes the access log itself, so a FHIR URL
built from the request, or a token in that log, shows here as it would in production."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.api_support import CAR_T, NOW, PATIENT, USERS
from support.live_api import LIVE_BASE_URL, LiveApi
from uvicorn.logging import AccessFormatter

from surveillance.accounts import auth
from surveillance.http import access_log
from surveillance.kit.db import write_session

FORGED = {"Host": "evil.example.com", "X-Forwarded-Proto": "http", "X-Forwarded-For": "6.6.6.6"}


def _urls(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from _urls(item)
    elif isinstance(value, str) and value.startswith(("http://", "https://")):
        yield value


def _fhir(live: LiveApi, path: str, role: str, **headers: str) -> dict[str, Any]:
    response = httpx.get(
        f"{live.url}{path}",
        headers={**live.headers(role), "Accept": "application/fhir+json", **headers},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    return body


def _assert_from_the_setting(resource: dict[str, Any]) -> None:
    """Our URLs start with SURVEILLANCE_BASE_URL; none names the address asked, or a Host."""
    urls = list(_urls(resource))
    assert any(url.startswith(f"{LIVE_BASE_URL}/") for url in urls), urls
    asked = [url for url in urls if "127.0.0.1" in url or "example.com" in url]
    assert not asked, asked


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/patients/{PATIENT['study_id']}/calendar",  # a CarePlan
        f"/api/v1/protocols/{CAR_T}?version=1.1",  # a PlanDefinition
    ],
)
def test_a_forged_host_or_forwarded_scheme_changes_no_fhir_url(
    live_api: LiveApi, path: str
) -> None:
    plain = _fhir(live_api, path, "investigator")
    forged = _fhir(live_api, path, "investigator", **FORGED)
    assert forged == plain
    _assert_from_the_setting(plain)


def test_a_forged_host_or_forwarded_scheme_changes_no_feed_identifier(live_api: LiveApi) -> None:
    """The caught-up page is paced per consumer (the clock is stopped): one fetch each."""
    feed = "/api/v1/feeds/adverse-events"
    plain = _fhir(live_api, feed, "admin")
    forged = _fhir(live_api, feed, "pharmacovigilance", **FORGED)
    assert plain["entry"]
    assert forged == plain
    _assert_from_the_setting(plain)
    links = {link["relation"]: link["url"] for link in plain["link"]}
    assert links["self"].startswith(f"{LIVE_BASE_URL}/api/v1/feeds/adverse-events")
    assert {entry["fullUrl"] for entry in plain["entry"]} == {
        f"{LIVE_BASE_URL}/fhir/AdverseEvent/{PATIENT['study_id']}-AE01"
    }


def _feed_token(live: LiveApi, role: str, site: str) -> str:
    with write_session(live.engine) as session:
        _, token = auth.create_token(
            session, email=USERS[role][0], actor="test", feed_site=site, now=NOW
        )
    return token


class _Lines(logging.Handler):
    """The access log as uvicorn's own formatter writes it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def access_lines() -> Iterator[list[str]]:
    """uvicorn's access log at INFO for one test (the live server runs at CRITICAL)."""
    logger = logging.getLogger(access_log.ACCESS_LOGGER)
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        logger.setLevel(level)
        logger.removeHandler(handler)


def test_a_real_servers_access_log_never_shows_the_feed_token(
    live_api: LiveApi, access_lines: list[str]
) -> None:
    token = _feed_token(live_api, "nurse", "Rome")
    url = f"{live_api.url}/api/v1/sites/Rome/calendar.ics"
    assert httpx.get(url, params={"token": token, "x": "1"}).status_code == 200
    assert httpx.head(url, params={"token": token}).status_code == 200
    assert httpx.get(url, params={"access_token": token}).status_code == 401
    assert len(access_lines) == 3, access_lines
    assert not [line for line in access_lines if token in line or token[:12] in line]
    assert "GET /api/v1/sites/Rome/calendar.ics?token=[redacted]&x=1 HTTP/1.1" in access_lines[0]
    assert "HEAD /api/v1/sites/Rome/calendar.ics?token=[redacted] HTTP/1.1" in access_lines[1]


def test_the_site_feed_over_http_answers_head_and_a_conditional_get(live_api: LiveApi) -> None:
    token = _feed_token(live_api, "nurse", "Rome")
    url = f"{live_api.url}/api/v1/sites/Rome/calendar.ics"
    got = httpx.get(url, params={"token": token})
    assert got.status_code == 200
    assert got.content.startswith(b"BEGIN:VCALENDAR")
    head = httpx.head(url, params={"token": token})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    for name in ("ETag", "Last-Modified", "content-type"):
        assert head.headers[name] == got.headers[name], name
    again = httpx.get(url, params={"token": token}, headers={"If-None-Match": got.headers["ETag"]})
    assert again.status_code == 304
    assert again.content == b""
    since = {"If-Modified-Since": got.headers["Last-Modified"]}
    assert httpx.get(url, params={"token": token}, headers=since).status_code == 304


def test_the_document_says_a_completed_item_leaves_the_calendar(live_api: LiveApi) -> None:
    """RFC 5545 leaves it to us (STATUS:CANCELLED, or drop it): the published contract
    says which one we chose (tests/.../test_api_feed_conformance.py shows it done)."""
    document = httpx.get(f"{live_api.url}/openapi.json").json()
    operation = document["paths"]["/api/v1/sites/{site}/calendar.ics"]["get"]
    assert "Completed (or otherwise closed) assessments leave the feed" in operation["description"]
    assert "Overdue assessments" in operation["description"]

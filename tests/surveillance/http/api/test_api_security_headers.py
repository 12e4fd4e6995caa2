"""Every response carries the pages' security headers; API answers (patient data) are
never stored by a cache unless the route chose its own caching (the feed's ETags)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from support.api_support import Api

from surveillance.http.security_headers import PAGE_POLICY

FEED = "/api/v1/feeds/adverse-events"


def _assert_security_headers(response_headers: dict[str, str] | object, path: str) -> None:
    headers = response_headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"], path  # type: ignore[index]
    assert headers["x-content-type-options"] == "nosniff", path  # type: ignore[index]
    assert headers["referrer-policy"] == "same-origin", path  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/api/v1/patients/ROM-101", "nurse"),
        ("/api/v1/patients/ROM-101/calendar", "nurse"),
        ("/api/v1/patients/ROM-101/audit", "investigator"),
        ("/api/v1/sites/Rome/due", "nurse"),
        ("/api/v1/patients/NOPE-1", "nurse"),  # a 404 too
        ("/api/v1/patients/ROM-101", None),  # and a 401
    ],
)
def test_api_answers_are_not_stored_and_carry_the_security_headers(
    api: Api, path: str, role: str | None
) -> None:
    api.enroll()
    response = api.get(path, role=role)
    assert response.headers["cache-control"] == "no-store", (path, response.status_code)
    _assert_security_headers(response.headers, path)
    assert response.headers["content-security-policy"] == PAGE_POLICY


def test_the_feed_keeps_its_own_caching(api: Api) -> None:
    response = api.get(FEED, role="pharmacovigilance")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-cache"
    assert "etag" in response.headers
    _assert_security_headers(response.headers, FEED)


@pytest.mark.parametrize("path", ["/openapi.json", "/healthz", "/login", "/no-such-page"])
def test_other_answers_carry_the_security_headers(api: Api, path: str) -> None:
    _assert_security_headers(api.client.get(path).headers, path)


def test_docs_allow_exactly_their_inline_script(api: Api) -> None:
    response = api.client.get("/docs")
    assert response.status_code == 200
    _assert_security_headers(response.headers, "/docs")
    policy = response.headers["content-security-policy"]
    [script] = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}'" in policy
    assert "unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert int(response.headers["content-length"]) == len(response.content)

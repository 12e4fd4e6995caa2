"""Errors a browser meets outside the pages (an unknown address, a bug) are pages in the
site's layout; the API and scripts keep problem details. Refusals are in plain words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from support.web_support import sign_in_as

from surveillance.accounts.auth import refusal
from surveillance.accounts.models import CLINICAL_ROLES, Role

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SECRET = "the database password is hunter2"  # what a bug's message must never show


def _boom() -> None:
    raise RuntimeError(SECRET)


@pytest.fixture
def buggy(pages: TestClient) -> Iterator[TestClient]:
    """The same app with a page and an API path that fail, answering as a server would."""
    app = pages.app
    assert isinstance(app, FastAPI)
    app.add_api_route("/broken", _boom)
    app.add_api_route("/api/v1/broken", _boom)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client


class TestUnknownAddress:
    def test_a_browser_gets_a_page_in_the_layout(self, pages: TestClient) -> None:
        sign_in_as(pages, "nurse")
        page = pages.get("/no-such-page", headers=BROWSER)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert '<html lang="en">' in page.text
        assert "<title>Not found · LTFU surveillance</title>" in page.text
        assert "There is no page at this address" in page.text
        assert 'aria-label="Main"' in page.text  # the navigation of the signed-in nurse
        assert "Sign out" in page.text

    def test_signed_out_the_page_offers_to_sign_in(self, pages: TestClient) -> None:
        page = pages.get("/no-such-page", headers=BROWSER)
        assert page.status_code == 404
        assert 'href="/login"' in page.text

    @pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/fhir/no-such-thing"])
    def test_the_api_keeps_problem_details(self, pages: TestClient, path: str) -> None:
        answer = pages.get(path, headers=BROWSER)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"

    def test_a_script_keeps_problem_details(self, pages: TestClient) -> None:
        answer = pages.get("/no-such-page")  # Accept: */*
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"


class TestBug:
    def test_a_browser_gets_a_friendly_page_that_leaks_nothing(self, buggy: TestClient) -> None:
        sign_in_as(buggy, "nurse")
        page = buggy.get("/broken", headers=BROWSER)
        assert page.status_code == 500
        assert page.headers["content-type"].startswith("text/html")
        assert "Something went wrong on our side" in page.text
        assert SECRET not in page.text
        assert "RuntimeError" not in page.text
        assert "Traceback" not in page.text

    def test_the_api_gets_problem_details(self, buggy: TestClient) -> None:
        answer = buggy.get("/api/v1/broken", headers=BROWSER)
        assert answer.status_code == 500
        assert answer.headers["content-type"] == "application/problem+json"
        assert SECRET not in answer.text


class TestRefusal:
    def test_a_nurse_reads_who_may(self, pages: TestClient) -> None:
        sign_in_as(pages, "nurse")
        page = pages.get("/admin/alerts")
        assert page.status_code == 403
        assert (
            "Only administrators can see and retry undelivered alerts. "
            "You are signed in as a nurse." in page.text
        )
        assert 'href="/access"' in page.text

    def test_the_words(self) -> None:
        assert (
            refusal((Role.investigator, Role.admin), Role.nurse, "change a patient's status")
            == "Only investigators and administrators can change a patient's status. "
            "You are signed in as a nurse."
        )
        assert refusal(CLINICAL_ROLES, Role.pharmacovigilance, "open a patient's page") == (
            "Only nurses, investigators and administrators can open a patient's page. "
            "You are signed in as pharmacovigilance."
        )


def test_the_favicon_is_served_and_linked(pages: TestClient) -> None:
    icon = pages.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    svg = pages.get("/static/favicon.svg")
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert 'href="/favicon.ico"' in pages.get("/login").text

"""Pages in the reader's language: the browser's Accept-Language, overridden by the
language saved from the header's switch; dates in words of that language; assessment
names from the protocol file's translations. The clock stands at 2026-11-25 (Rome)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from support.web_support import csrf_of, sign_in_as

import rules

ITALIAN = {"Accept-Language": "it-IT,it;q=0.9,en;q=0.5"}
GERMAN = {"Accept-Language": "de-DE,de;q=0.9"}


def _names(locale: str) -> set[str]:
    protocol = rules.ProtocolRegistry.from_directory().get("cd19-car-t-pediatric-autoimmune")
    return {rule.spec.names()[locale] for rule in protocol.rules.values()}


def test_an_italian_browser_gets_italian_pages(pages: TestClient) -> None:
    assert 'lang="it"' in pages.get("/login", headers=ITALIAN).text
    sign_in_as(pages, "investigator")
    page = pages.get("/dashboard?on=2026-12-03", headers=ITALIAN)
    assert page.status_code == 200
    assert page.headers["content-language"] == "it"
    assert '<html lang="it">' in page.text
    assert "Esci" in page.text  # Sign out
    assert ">In ritardo da più tempo<" in page.text  # Oldest overdue
    assert "Al 3 dic 2026" in page.text  # As of, in words
    assert 'value="2026-12-03"' in page.text  # the form keeps the ISO date a machine reads
    assert any(name in page.text for name in _names("it"))  # assessment names, in Italian
    assert "Sign out" not in page.text


def test_a_german_browser_gets_german_dates(pages: TestClient) -> None:
    sign_in_as(pages, "investigator")
    page = pages.get("/dashboard?on=2026-12-03", headers=GERMAN)
    assert '<html lang="de">' in page.text
    assert "Stand 3. Dez. 2026" in page.text
    assert any(name in page.text for name in _names("de"))


def test_without_a_known_language_the_pages_are_english(pages: TestClient) -> None:
    sign_in_as(pages, "investigator")
    page = pages.get("/dashboard?on=2026-12-03", headers={"Accept-Language": "fr, es"})
    assert '<html lang="en">' in page.text
    assert "As of 3 Dec 2026" in page.text


def test_the_saved_language_overrides_the_browser(pages: TestClient) -> None:
    sign_in_as(pages, "nurse")
    access = pages.get("/access", headers=ITALIAN)
    assert "Il tuo accesso" in access.text
    saved = pages.post(
        "/language",
        data={"locale": "de", "csrf_token": csrf_of(access), "next": "/access"},
        headers=ITALIAN,
    )
    assert (saved.status_code, saved.headers["location"]) == (303, "/access")
    page = pages.get("/access", headers=ITALIAN)
    assert '<html lang="de">' in page.text
    assert "Ihr Zugang" in page.text
    assert '<option value="de" lang="de" selected>Deutsch</option>' in page.text


def test_the_switch_is_refused_without_the_forms_token(pages: TestClient) -> None:
    sign_in_as(pages, "nurse")
    refused = pages.post("/language", data={"locale": "de", "csrf_token": "forged"})
    assert refused.status_code == 403
    assert '<html lang="en">' in pages.get("/access").text


@pytest.mark.parametrize("locale", ["fr", "../../etc"])
def test_an_unknown_language_is_refused(pages: TestClient, locale: str) -> None:
    sign_in_as(pages, "nurse")
    token = csrf_of(pages.get("/access"))
    assert pages.post("/language", data={"locale": locale, "csrf_token": token}).status_code == 422

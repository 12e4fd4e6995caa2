"""The site's "results to review" page and its link on the dashboard: results stored as free
text before results were typed that match no declared value, each linked to the patient
page where it is corrected.

ROM-101 (Rome, infused 2024-01-31); the clock stands at noon UTC on 2026-11-25.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from support.legacy import store_free_text
from support.web_support import NOW, SiteDb, sign_in_as

import rules
from surveillance.adverse_events.legacy_results import map_stored_results
from surveillance.adverse_events.results import correct_outcome
from surveillance.kit.db import write_session
from surveillance.records.queries import find_assessment

KEY = "ROM-101:1:rcl_test:2"
PAGE = "/sites/Rome/results-to-review"


def _flag(site_db: SiteDb, registry: rules.ProtocolRegistry) -> None:
    store_free_text(site_db.engine, registry, NOW, KEY, "Positive by qPCR")
    with write_session(site_db.engine) as session:
        assert map_stored_results(session, registry=registry, now=NOW).flagged_keys == [KEY]


def test_the_page_lists_the_text_as_entered_and_how_to_resolve_it(
    pages: TestClient, site_db: SiteDb, registry: rules.ProtocolRegistry
) -> None:
    _flag(site_db, registry)
    sign_in_as(pages, "nurse")

    page = pages.get(PAGE)

    assert page.status_code == 200
    assert "Results to review · Rome" in page.text
    assert 'Need a typed value <span class="count">(1)</span>' in page.text
    assert "Positive by qPCR" in page.text
    assert '<a href="/patients/ROM-101">ROM-101</a>' in page.text
    assert KEY in page.text
    assert "one of negative, positive, indeterminate, sample_not_evaluable" in page.text
    assert "<strong>Correct</strong>" in page.text  # how to resolve it, with a reason
    assert "give a reason" in page.text


def test_the_dashboard_links_to_it_with_the_count_only_when_there_is_one(
    pages: TestClient, site_db: SiteDb, registry: rules.ProtocolRegistry
) -> None:
    sign_in_as(pages, "investigator")
    assert "results-to-review" not in pages.get("/dashboard").text

    _flag(site_db, registry)

    dashboard = pages.get("/dashboard").text
    assert f'href="{PAGE}">1 result to review</a>' in dashboard


def test_a_correction_empties_the_list(
    pages: TestClient, site_db: SiteDb, registry: rules.ProtocolRegistry
) -> None:
    _flag(site_db, registry)
    with write_session(site_db.engine) as session:
        version = find_assessment(session, KEY)[1].version
        correct_outcome(
            session,
            key=KEY,
            result="positive",
            reason="qPCR positive per the lab report",
            actor="investigator@rome.example",
            registry=registry,
            now=NOW,
            expected_version=version,
        )
    sign_in_as(pages, "investigator")

    assert "No result at Rome needs a typed value." in pages.get(PAGE).text
    assert "results-to-review" not in pages.get("/dashboard").text


def test_other_sites_and_pharmacovigilance_do_not_see_it(pages: TestClient) -> None:
    sign_in_as(pages, "nurse")
    assert pages.get("/sites/Erlangen/results-to-review").status_code == 404
    pages.cookies.clear()
    sign_in_as(pages, "pharmacovigilance")
    assert pages.get(PAGE).status_code == 403

"""Issue 15: the feed's pages, byte for byte, as they were before its serializer was made
fast (JSON and FHIR, several pages, on SQLite and PostgreSQL).

The golden file was written by the dict-based serializer (each resource built as nested
dicts, then ``json.dumps``); the pages served now must be the same bytes, with the same
ETag, Retry-After and media type. The data covers what changes the output: several
versions of a case, a nullification, an acknowledged case, a site with and one without a
country, a MedDRA-coded and an uncoded term, no grade, a free-text narrative with
markup, quotes, accents, a tab and a line break.

``UPDATE_FEED_GOLDEN=1`` rewrites the file (only for a deliberate change of the output).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support.api_support import NOW, Api, open_api

import rules
from surveillance.adverse_events.acks import record_ack
from surveillance.adverse_events.cases import add_follow_up, create_case, nullify_case
from surveillance.adverse_events.facts import CaseFacts
from surveillance.kit.db import write_session
from surveillance.records import sites
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    ReporterQualification,
    Seriousness,
)

GOLDEN = Path(__file__).with_name("feed_pages.golden.json")
FEED = "/api/v1/feeds/adverse-events"
BASE = "https://ltfu.example.org/"  # a trailing slash: every URL must still have one "/"
SEPSIS = CaseFacts(
    onset_date=date(2024, 2, 2),
    awareness_date=date(2024, 2, 3),
    term="Sepsis",
    category=Category.infection,
    grade=4,
    grade_scale=GradeScale.ctcae_v5,
    serious=True,
    seriousness_criteria=(Seriousness.life_threatening, Seriousness.hospitalization),
    relatedness=Relatedness.possibly_related,
    expected=False,
    outcome=CaseOutcome.recovering,
    meddra_code="10040047",
    meddra_version="27.1",
    narrative='Fever 39.5 °C, "rigors" <b>&</b> hypotension\t— Müller\nday 2',
)
RECOVERED = CaseFacts(
    **{
        **SEPSIS.__dict__,
        "end_date": date(2024, 2, 20),
        "outcome": CaseOutcome.recovered_with_sequelae,
        "seriousness_criteria": (Seriousness.other_medically_important,),
        "last_info_date": date(2026, 11, 25),
    }
)
CRS = CaseFacts(
    onset_date=date(2024, 2, 5),
    awareness_date=date(2024, 2, 5),
    term="Cytokine release syndrome",
    category=Category.crs,
    grade=2,
    grade_scale=GradeScale.astct,
    serious=False,
    relatedness=Relatedness.related,
    expected=True,
    outcome=CaseOutcome.recovered,
)
UNGRADED = CaseFacts(
    onset_date=date(2024, 3, 1),
    awareness_date=date(2024, 3, 4),
    term="Alopecia (patchy)",
    category=Category.other,
    serious=False,
    relatedness=Relatedness.not_assessed,
    expected=False,
    outcome=CaseOutcome.unknown,
    reporter_qualification=ReporterQualification.consumer,
)


@pytest.fixture
def feed_api(database_url: str, registry: rules.ProtocolRegistry) -> Iterator[Api]:
    with open_api(database_url, registry, base_url=BASE, feed_min_poll_seconds=0) as api:
        with write_session(api.engine) as session:
            sites.add_site(
                session, site_id="Milan", name="Milan", timezone="Europe/Rome", country="IT"
            )
        api.enroll()  # ROM-101 at Rome (no country)
        api.enroll(study_id="ERL-201", site_id="Erlangen", sex="M", birth_date=date(2012, 7, 9))
        api.enroll(study_id="MIL-301", site_id="Milan", birth_date=date(2010, 2, 2))
        with write_session(api.engine) as session:
            write = {"actor": "t", "registry": api.registry, "now": NOW}
            sepsis = create_case(session, study_id="ROM-101", facts=SEPSIS, **write)
            create_case(session, study_id="ERL-201", facts=CRS, source="Nurse's call", **write)
            case_id = sepsis.case.case_id
            add_follow_up(session, case_id=case_id, facts=RECOVERED, expected_version=1, **write)
            create_case(session, study_id="MIL-301", facts=UNGRADED, **write)
            create_case(session, study_id="MIL-301", facts=SEPSIS, **write)
            nullify_case(
                session, case_id=case_id, reason='Wrong patient "ROM-110"', expected_version=2,
                **write,
            )  # fmt: skip
            record_ack(session, consumer="pv@sponsor.example", case_id="ERL-201-AE01",
                       version=1, status="AA", message=None, now=NOW)  # fmt: skip
        yield api


# name -> query parameters of one page
PAGES: dict[str, dict[str, Any]] = {
    "json_all": {"limit": 100},
    "json_first_two": {"limit": 2},
    "json_after_2": {"limit": 2, "cursor": "2"},
    "json_caught_up": {"limit": 2, "cursor": "6"},
    "fhir_all": {"limit": 100, "format": "fhir"},
    "fhir_first_two": {"limit": 2, "format": "fhir"},
    "fhir_after_4": {"limit": 2, "format": "fhir", "cursor": "4"},
    "fhir_caught_up": {"limit": 5, "format": "fhir", "cursor": "6"},
}
HEADERS = ("content-type", "etag", "retry-after", "cache-control", "vary")


def _pages(api: Api) -> dict[str, Any]:
    pages: dict[str, Any] = {}
    for name, params in PAGES.items():
        response = api.get(FEED, role="pharmacovigilance", **params)
        assert response.status_code == 200, response.text
        pages[name] = {
            "headers": {h: response.headers.get(h) for h in HEADERS},
            "body": response.content.decode(),
        }
    # Accept instead of ?format=fhir: the same bundle.
    headers = {**api.headers("pharmacovigilance"), "Accept": "application/fhir+json"}
    response = api.client.get(FEED, headers=headers, params={"limit": 3})
    pages["fhir_by_accept"] = {"headers": {}, "body": response.content.decode()}
    return pages


def test_pages_are_the_bytes_served_before(feed_api: Api) -> None:
    pages = _pages(feed_api)
    if os.environ.get("UPDATE_FEED_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(pages, indent=1, ensure_ascii=False) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert pages.keys() == golden.keys()
    for name, page in pages.items():
        assert page["headers"] == golden[name]["headers"], name
        assert page["body"] == golden[name]["body"], name
    # The data is what the docstring says it is (a change to it would make the file moot).
    every = json.loads(pages["fhir_all"]["body"])["entry"]
    assert len(every) == 6
    assert "Müller" in pages["fhir_all"]["body"]  # not \u-escaped
    assert "\\t" in pages["json_all"]["body"]
    assert {e["resource"].get("modifierExtension") is not None for e in every} == {True, False}

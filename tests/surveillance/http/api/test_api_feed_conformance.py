"""Issue 13: what integrators hit in the FHIR feed and the site iCalendar feed, each
defect with the test that would have caught it. The FHIR output is checked by two
independent R4 models (fhir.resources, SMART's fhirclient), the iCalendar feed by two
parsers (icalendar, ics)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.structuredefinition import StructureDefinition
from fhirclient.models.bundle import Bundle as SmartBundle
from fhirclient.models.codesystem import CodeSystem as SmartCodeSystem
from fhirclient.models.structuredefinition import StructureDefinition as SmartStructureDefinition
from support.api_support import NOW, Api, open_api

import rules
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

FEED = "/api/v1/feeds/adverse-events"
BASE = "https://ltfu.example.org"
SEPSIS = CaseFacts(
    onset_date=date(2024, 2, 2),
    awareness_date=date(2024, 2, 2),
    term="Sepsis",
    category=Category.infection,
    grade=4,
    grade_scale=GradeScale.ctcae_v5,
    serious=True,
    seriousness_criteria=(Seriousness.life_threatening,),
    relatedness=Relatedness.possibly_related,
    expected=False,
    outcome=CaseOutcome.recovering,
    meddra_code="10040047",
    meddra_version="27.1",
)


# -- FHIR feed ---------------------------------------------------------------------------


@pytest.fixture
def fhir_api(database_url: str, registry: rules.ProtocolRegistry) -> Iterator[Api]:
    """A configured public base URL, and one case with a follow-up (two versions)."""
    with open_api(database_url, registry, base_url=BASE, feed_min_poll_seconds=0) as api:
        api.enroll()
        with write_session(api.engine) as session:
            change = create_case(session, study_id="ROM-101", facts=SEPSIS, actor="t",
                                 registry=api.registry, now=NOW)  # fmt: skip
            add_follow_up(session, case_id=change.case.case_id, facts=SEPSIS, actor="t",
                          registry=api.registry, now=NOW, expected_version=1)  # fmt: skip
        yield api


def _bundle(api: Api, host: str | None = None, **params: Any) -> dict[str, Any]:
    headers = {**api.headers("pharmacovigilance"), "Accept": "application/fhir+json"}
    if host is not None:
        headers["Host"] = host
    response = api.client.get(FEED, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _validated(bundle: dict[str, Any]) -> dict[str, Any]:
    Bundle.model_validate(bundle)
    SmartBundle(bundle, strict=True)
    return bundle


def _urls(value: Any) -> Iterator[str]:
    """Every string under ``value`` that looks like an absolute http(s) URL."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from _urls(item)
    elif isinstance(value, str) and value.startswith(("http://", "https://")):
        yield value


def test_fhir_urls_come_from_the_configured_base_url_not_the_host_header(fhir_api: Api) -> None:
    plain = _validated(_bundle(fhir_api, limit=1))
    forged = _validated(_bundle(fhir_api, host="evil.example.com", limit=1))
    assert plain == forged
    theirs = ("hl7.org", "meddra.org", "unitsofmeasure.org")
    ours = [url for url in _urls(plain) if not any(other in url for other in theirs)]
    assert ours
    assert all(url.startswith(f"{BASE}/") for url in ours), ours
    links = {link["relation"]: link["url"] for link in plain["link"]}
    assert links["next"].startswith(f"{BASE}/api/v1/feeds/adverse-events?")
    assert "evil" not in str(forged)
    assert "testserver" not in str(plain)


def test_local_code_systems_and_definitions_are_served_at_their_urls(fhir_api: Api) -> None:
    bundle = _validated(_bundle(fhir_api))
    systems = {url for url in _urls(bundle) if "/fhir/CodeSystem/" in url}
    definitions = {url for url in _urls(bundle) if "/fhir/StructureDefinition/" in url}
    assert len(systems) >= 3
    assert len(definitions) >= 8
    codes = _codes_used(bundle)
    for url in sorted(systems | definitions):
        response = fhir_api.client.get(url.removeprefix(BASE))
        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith("application/fhir+json")
        resource = response.json()
        assert resource["url"] == url
        if resource["resourceType"] == "CodeSystem":
            CodeSystem.model_validate(resource)
            SmartCodeSystem(resource, strict=True)
            served = {concept["code"] for concept in resource["concept"]}
            assert codes[url] <= served, url  # every code the feed sends is defined
        else:
            StructureDefinition.model_validate(resource)
            SmartStructureDefinition(resource, strict=True)
            assert resource["type"] == "Extension"
    assert fhir_api.client.get("/fhir/CodeSystem/nope").status_code == 404


def _codes_used(value: Any, found: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    found = {} if found is None else found
    if isinstance(value, dict):
        if "system" in value and "code" in value:
            found.setdefault(value["system"], set()).add(value["code"])
        for item in value.values():
            _codes_used(item, found)
    elif isinstance(value, list):
        for item in value:
            _codes_used(item, found)
    return found


def test_meddra_is_coded_with_the_hl7_terminology_system(fhir_api: Api) -> None:
    bundle = _validated(_bundle(fhir_api))
    event = bundle["entry"][0]["resource"]["event"]
    assert event["coding"][0]["system"] == "https://www.meddra.org"
    assert "terminology.hl7.org/CodeSystem/mdr" not in str(bundle)


def test_a_history_is_newest_first_with_version_independent_full_urls(fhir_api: Api) -> None:
    """R4 http.html#history: newest first; Bundle.entry.fullUrl is [base]/AdverseEvent/[id]."""
    bundle = _validated(_bundle(fhir_api))
    versions = [int(entry["resource"]["meta"]["versionId"]) for entry in bundle["entry"]]
    assert versions == [2, 1]
    case_id = bundle["entry"][0]["resource"]["id"]
    assert {entry["fullUrl"] for entry in bundle["entry"]} == {
        f"{BASE}/fhir/AdverseEvent/{case_id}"
    }
    locations = [entry["response"]["location"] for entry in bundle["entry"]]
    assert locations == [f"AdverseEvent/{case_id}/_history/2", f"AdverseEvent/{case_id}/_history/1"]


def test_the_fhir_form_of_a_caught_up_page_is_not_paced_with_its_json_form(
    database_url: str, registry: rules.ProtocolRegistry
) -> None:
    with open_api(database_url, registry, feed_min_poll_seconds=5) as api:
        pv = api.headers("pharmacovigilance")
        assert api.client.get(FEED, headers=pv).status_code == 200
        fhir = api.client.get(FEED, headers={**pv, "Accept": "application/fhir+json"})
        assert fhir.status_code == 200, fhir.text
        assert api.client.get(FEED, params={"format": "fhir"}, headers=pv).status_code == 429
        assert api.client.get(FEED, headers=pv).status_code == 429  # each form is still paced

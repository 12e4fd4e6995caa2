"""Every URL our FHIR output puts under SURVEILLANCE_BASE_URL resolves: the feed Bundle,
each protocol's PlanDefinition and a patient's CarePlan Bundle are crawled, every string
starting with the base URL is fetched (the ``|version`` and ``#fragment`` of a canonical
stripped, as R4 references.html#canonical says) and must answer 200 with what it names:
a CodeSystem, StructureDefinition or PlanDefinition whose ``url`` is that URL, an
identifier system's NamingSystem whose ``uniqueId`` is that URL, the AdverseEvent a
``fullUrl`` names. Each resource is parsed by fhir.resources' R4B models and fhirclient's
R4 models. A local URL added without a route fails here."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhirclient.models.fhirelementfactory import FHIRElementFactory
from support.api_support import CAR_T, NOW, Api, open_api

import rules
from surveillance.adverse_events import fhir_definitions as feed_terms
from surveillance.adverse_events.cases import add_follow_up, create_case
from surveillance.adverse_events.facts import CaseFacts
from surveillance.http.api.routes import fhir_definitions
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, write_session
from surveillance.patients import fhir_careplan as care_plan_terms
from surveillance.protocols import fhir_terms as protocol_terms
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    Seriousness,
)

BASE = "https://ltfu.example.org"
FHIR_JSON = "application/fhir+json"
STUDY_ID = "ROM-101"
CASE = CaseFacts(
    onset_date=date(2024, 2, 2),
    awareness_date=date(2024, 2, 2),
    term="Cytokine release syndrome",
    category=Category.crs,
    grade=2,
    grade_scale=GradeScale.ctcae_v5,
    serious=True,
    seriousness_criteria=(Seriousness.hospitalization,),
    relatedness=Relatedness.related,
    expected=True,
    outcome=CaseOutcome.recovered,
)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def crawled(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    registry: rules.ProtocolRegistry,
) -> Iterator[tuple[Api, list[dict[str, Any]]]]:
    """A patient with a coded result and a case in two versions; the three outputs."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('crawl') / 'surveillance.db'}"
    else:
        url = request.getfixturevalue("pg").create_database(f"crawl_{uuid.uuid4().hex[:16]}")
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    with open_api(url, registry, base_url=BASE, feed_min_poll_seconds=0) as api:
        api.enroll()
        key = f"{STUDY_ID}:1:rcl_test:1"
        done = api.post(
            f"/api/v1/assessments/{key}/outcome",
            {"outcome": "completed", "date": "2024-04-30", "result": "negative"},
            if_match='"1"',
        )
        assert done.status_code == 200, done.text
        with write_session(api.engine) as session:
            change = create_case(session, study_id=STUDY_ID, facts=CASE, actor="t",
                                 registry=api.registry, now=NOW)  # fmt: skip
            add_follow_up(session, case_id=change.case.case_id, facts=CASE, actor="t",
                          registry=api.registry, now=NOW, expected_version=1)  # fmt: skip
        outputs = [
            _fhir(api, "/api/v1/feeds/adverse-events", "pharmacovigilance", limit=1),
            _fhir(api, "/api/v1/feeds/adverse-events", "pharmacovigilance"),
            _fhir(api, f"/api/v1/patients/{STUDY_ID}/calendar", "nurse"),
            *(
                _fhir(api, f"/api/v1/protocols/{p.id}", "nurse", version=p.version)
                for p in api.registry.all()
            ),
        ]
        yield api, outputs


def _fhir(api: Api, path: str, role: str, **params: Any) -> dict[str, Any]:
    response = api.get(path, role=role, format="fhir", **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    body: dict[str, Any] = response.json()
    return body


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def _local_urls(outputs: list[dict[str, Any]]) -> set[str]:
    """Every string under our base, plus each history entry's ``response.location``
    (relative to the FHIR base [base]/fhir, R4 Bundle.entry.response.location)."""
    found = {text for output in outputs for text in _strings(output) if text.startswith(BASE)}
    locations = {
        f"{BASE}/fhir/{entry['response']['location']}"
        for output in outputs
        for entry in output.get("entry", ())
        if "response" in entry
    }
    return found | locations


def _canonical_target(url: str) -> str:
    return url.split("#", 1)[0].split("|", 1)[0]


def _validated(resource: dict[str, Any]) -> None:
    kind = resource["resourceType"]
    get_fhir_model_class(kind).model_validate(resource)
    FHIRElementFactory.instantiate(kind, resource)  # strict: raises FHIRValidationError


def test_every_local_url_resolves(crawled: tuple[Api, list[dict[str, Any]]]) -> None:
    api, outputs = crawled
    urls = _local_urls(outputs)
    targets = {_canonical_target(url) for url in urls}
    kinds = {re.sub(r"^/fhir/([A-Za-z]+)/.*", r"\1", u.removeprefix(BASE)) for u in targets}
    # What the three outputs name today: a new kind of URL is crawled without a change here.
    assert {"CodeSystem", "StructureDefinition", "PlanDefinition", "AdverseEvent"} <= kinds
    assert {"/study-ids", "/assessments", "/care-plans", "/adverse-events"} <= kinds
    assert any("|" in url for url in urls)  # versioned canonicals were stripped
    assert len(targets) >= 30
    failures = []
    for target in sorted(targets):
        path = target.removeprefix(BASE)
        # The feed and its cases for the feed's roles; definitions need no token.
        role = "pharmacovigilance" if path.startswith(("/api/", "/fhir/AdverseEvent/")) else None
        response = api.client.get(path, headers=api.headers(role))
        if response.status_code != 200:
            failures.append(f"{target}: {response.status_code}")
            continue
        if path.startswith("/api/"):
            continue  # the feed's own paging links
        assert response.headers["content-type"] == FHIR_JSON, target
        _check_resource(response.json(), target, path)
    assert not failures


def _check_resource(resource: dict[str, Any], target: str, path: str) -> None:
    _validated(resource)
    kind = resource["resourceType"]
    if kind == "NamingSystem":
        assert [u["value"] for u in resource["uniqueId"]] == [target]
    elif kind == "AdverseEvent":
        match = re.fullmatch(r"/fhir/AdverseEvent/([^/]+)(?:/_history/(\d+))?", path)
        assert match is not None, path
        assert resource["id"] == match[1]
        if match[2] is not None:
            assert resource["meta"]["versionId"] == match[2]
    else:
        assert resource["url"] == target, target


def test_every_declared_definition_is_served(
    crawled: tuple[Api, list[dict[str, Any]]],
) -> None:
    """Also those this patient's data does not use (a booked appointment, a nullified case)."""
    api, _ = crawled
    paths = [
        *(f"/fhir/StructureDefinition/{name}" for name in _declared_extensions()),
        *(f"/{path}" for path in fhir_definitions.IDENTIFIER_SYSTEMS),
        *(f"/fhir/CodeSystem/{name}" for name in feed_terms.CODE_SYSTEMS),
    ]
    for path in paths:
        response = api.client.get(path)
        assert response.status_code == 200, path
        _check_resource(response.json(), f"{BASE}{path}", path)


def _declared_extensions() -> list[str]:
    tables = (feed_terms.EXTENSIONS, protocol_terms.EXTENSIONS, care_plan_terms.EXTENSIONS)
    names = [name for table in tables for name in table]
    assert len(names) == len(set(names))  # one definition per URL
    return names


def test_every_local_code_is_defined(crawled: tuple[Api, list[dict[str, Any]]]) -> None:
    api, outputs = crawled
    used: dict[str, set[str]] = {}
    for output in outputs:
        _codes(output, used)
    local = {system: codes for system, codes in used.items() if system.startswith(BASE)}
    assert len(local) >= 6  # the feed's, the categories, assessments, a coded result
    for system, codes in local.items():
        served = api.client.get(system.removeprefix(BASE)).json()
        assert codes <= {concept["code"] for concept in served["concept"]}, system


def _codes(value: Any, found: dict[str, set[str]]) -> None:
    if isinstance(value, dict):
        if "system" in value and "code" in value:
            found.setdefault(value["system"], set()).add(value["code"])
        for item in value.values():
            _codes(item, found)
    elif isinstance(value, list):
        for item in value:
            _codes(item, found)


def test_the_adverse_event_read_is_the_feeds_and_guarded_like_it(
    crawled: tuple[Api, list[dict[str, Any]]],
) -> None:
    api, outputs = crawled
    feed = outputs[0]
    (entry,) = feed["entry"]  # limit=1: version 1
    full_url = entry["fullUrl"].removeprefix(BASE)
    latest = api.get(full_url, role="admin")
    assert latest.status_code == 200
    assert latest.headers["etag"] == 'W/"2"'
    assert latest.json()["meta"]["versionId"] == "2"
    first = api.get(f"{full_url}/_history/1", role="pharmacovigilance")
    assert first.json() == entry["resource"]
    assert api.get(full_url, role="nurse").status_code == 403
    assert api.get(full_url, role=None).status_code == 401
    for missing in (f"{full_url}/_history/3", "/fhir/AdverseEvent/ROM-999-AE01"):
        response = api.get(missing, role="pharmacovigilance")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


def test_a_plan_definition_by_canonical_and_by_version(
    crawled: tuple[Api, list[dict[str, Any]]],
) -> None:
    api, _ = crawled
    newest = api.registry.get(CAR_T)
    by_canonical = api.get(f"/fhir/PlanDefinition/{CAR_T}", role=None).json()
    assert by_canonical["version"] == newest.version
    for protocol in api.registry.all():
        resource_id = f"{protocol.id}-{protocol.version}"
        by_id = api.get(f"/fhir/PlanDefinition/{resource_id}", role=None).json()
        assert (by_id["id"], by_id["version"]) == (resource_id, protocol.version)
    assert api.get("/fhir/PlanDefinition/nope", role=None).status_code == 404

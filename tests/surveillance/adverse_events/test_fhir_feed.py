"""The feed as a FHIR Bundle, checked by fhir.resources' R4B models.

fhir.resources 8.x ships R5 (default), R4B and STU3, no R4; R4B's AdverseEvent and
Bundle have the same elements as R4's. The models do not check codes, xhtml, null or
empty values or Bundle invariants, so the tests below check those themselves.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.adverseevent import AdverseEvent
from fhir.resources.R4B.bundle import Bundle

from surveillance.adverse_events.fhir import (
    CATEGORY_DISPLAY,
    CHANGES,
    OUTCOMES,
    RELATEDNESS_DISPLAY,
    SERIOUSNESS_CRITERIA,
    adverse_event_bundle,
    adverse_event_bundle_json,
    fhir_id,
)
from surveillance.records import adverse_event_vocabulary as vocabulary

BASE = "https://ltfu.example.org"
SELF = f"{BASE}/api/v1/adverse-events/feed?after=16"
NEXT = f"{BASE}/api/v1/adverse-events/feed?after=20"
SD = f"{BASE}/fhir/StructureDefinition"
HL7 = "http://terminology.hl7.org/CodeSystem"
XHTML_DIV = "{http://www.w3.org/1999/xhtml}div"


def _case(**changes: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "case_id": "ROM-001-AE01",
        "version": 1,
        "status": "open",
        "nullify_reason": None,
        "study_id": "ROM-001",
        "site": "Rome",
        "site_country": "IT",
        "sex": "F",
        "age_at_onset_years": 12,
        "product": {
            "protocol_id": "cd19-car-t-pediatric-autoimmune",
            "protocol_version": "1.0",
            "name": "Autologous CD19 CAR-T cells, lentiviral vector (integrating), "
            "point-of-care manufacture",
        },
        "onset_date": "2026-02-20",
        "end_date": None,
        "awareness_date": "2026-02-21",
        "last_info_date": "2026-02-21",
        "term": "Cytokine release syndrome",
        "meddra_code": None,
        "meddra_version": None,
        "category": "crs",
        "grade": 1,
        "grade_scale": "astct",
        "serious": False,
        "seriousness_criteria": [],
        "relatedness": "related",
        "expected": True,
        "outcome": "recovered",
        "narrative": "Fever 38.9 °C on day 2 after infusion; resolved with paracetamol.",
        "pre_existing": False,
        "reporter_qualification": "physician",
        "source": None,
        "recorded_at": "2026-02-21T10:00:00+00:00",
    }
    return case | changes


def _entry(sequence: int, change: str, case: dict[str, Any]) -> dict[str, Any]:
    return {
        "sequence": sequence,
        "case_id": case["case_id"],
        "version": case["version"],
        "change": change,
        "last_info_date": case["last_info_date"],
        "recorded_at": case["recorded_at"],
        "case": case,
    }


CRS = _entry(17, "created", _case())
INFECTION = _entry(
    18,
    "created",
    _case(
        case_id="MIL-004-AE02",
        study_id="MIL-004",
        site="Milan",
        sex="M",
        age_at_onset_years=9,
        onset_date="2026-03-01",
        awareness_date="2026-03-02",
        last_info_date="2026-03-02",
        term="Pneumonia",
        meddra_code="10035664",
        meddra_version="27.1",
        category="infection",
        grade=3,
        grade_scale="ctcae_v5",
        serious=True,
        seriousness_criteria=["hospitalization"],
        relatedness="possibly_related",
        expected=False,
        outcome="recovering",
        narrative=None,
        source="",  # blank, as a form may send it: must not become an empty string
        recorded_at="2026-03-02T08:30:00+00:00",
    ),
)
FATAL = _entry(
    19,
    "updated",
    _case(
        case_id="BCN-002-AE01",
        version=2,
        study_id="BCN-002",
        site="Barcelona",
        site_country="ES",
        onset_date="2026-01-10",
        end_date="2026-03-03",
        awareness_date="2026-01-11",
        last_info_date="2026-03-04",
        term="Haemophagocytic lymphohistiocytosis",
        meddra_code="10071583",
        meddra_version="27.1",
        category="iec_hs",
        grade=5,
        grade_scale="ctcae_v5",
        serious=True,
        seriousness_criteria=["death", "life_threatening"],
        relatedness="probably_related",
        expected=False,
        outcome="fatal",
        source="Autopsy report",
        reporter_qualification="other_health_professional",
        recorded_at="2026-03-04T09:12:00+00:00",
    ),
)
NULLIFIED = _entry(
    20,
    "nullified",
    _case(
        version=2,
        status="nullified",
        nullify_reason="Entered for the wrong patient",
        recorded_at="2026-03-05T11:00:00+00:00",
    ),
)
ENTRIES = [CRS, INFECTION, FATAL, NULLIFIED]


@pytest.fixture
def bundle() -> dict[str, Any]:
    return adverse_event_bundle(ENTRIES, base_url=BASE, next_url=NEXT, self_url=SELF)


def _resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources in feed order (the bundle lists them newest first, as R4 wants)."""
    return [entry["resource"] for entry in reversed(bundle["entry"])]


def _extension(resource: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in resource.get("extension", []) if e["url"] == f"{SD}/{name}"]


def _walk(value: Any) -> Iterator[tuple[str | None, Any]]:
    """Every (key, value) pair of a JSON tree, list items with key None."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield None, item
            yield from _walk(item)


def test_bundle_validates_as_r4b_history(bundle: dict[str, Any]) -> None:
    parsed = Bundle.model_validate(bundle)

    assert parsed.type == "history"
    assert len(parsed.entry or []) == len(ENTRIES)
    for resource in _resources(bundle):
        assert AdverseEvent.model_validate(resource).actuality == "actual"


def test_bundle_survives_a_round_trip_through_the_model(bundle: dict[str, Any]) -> None:
    """Nothing dropped or renamed: the model gives back exactly what it was given."""
    dumped = json.loads(Bundle.model_validate(bundle).model_dump_json())

    # The model writes UTC instants with "Z"; both spellings are valid FHIR.
    assert dumped == json.loads(json.dumps(bundle).replace("+00:00", "Z"))


def test_json_follows_fhir_json_rules(bundle: dict[str, Any]) -> None:
    """No nulls, no empty arrays, objects or strings: the model lets all of them through."""
    empty = [(key, value) for key, value in _walk(bundle) if value in (None, [], {}, "")]

    assert empty == []


def test_history_entries_carry_request_and_response(bundle: dict[str, Any]) -> None:
    """bdl-3 and bdl-4 (not checked by the model): history needs both; no search, no total."""
    entries = bundle["entry"][::-1]  # feed order
    requests = [(e["request"]["method"], e["request"]["url"]) for e in entries]
    statuses = [e["response"]["status"] for e in entries]

    assert requests == [
        ("POST", "AdverseEvent"),
        ("POST", "AdverseEvent"),
        ("PUT", "AdverseEvent/BCN-002-AE01"),
        ("PUT", "AdverseEvent/ROM-001-AE01"),
    ]
    assert statuses == ["201 Created", "201 Created", "200 OK", "200 OK"]
    assert [e["response"]["etag"] for e in entries] == ['W/"1"', 'W/"1"', 'W/"2"', 'W/"2"']
    assert "total" not in bundle
    assert all("search" not in entry for entry in bundle["entry"])


def test_links_self_and_next(bundle: dict[str, Any]) -> None:
    assert bundle["link"] == [
        {"relation": "self", "url": SELF},
        {"relation": "next", "url": NEXT},
    ]


def test_last_page_has_no_next_link() -> None:
    bundle = adverse_event_bundle([CRS], base_url=BASE, next_url=None, self_url=SELF)

    assert [link["relation"] for link in bundle["link"]] == ["self"]


def test_empty_page_has_no_entry_array() -> None:
    bundle = adverse_event_bundle([], base_url=BASE, next_url=None, self_url=SELF)

    Bundle.model_validate(bundle)
    assert "entry" not in bundle


def test_a_history_lists_the_page_newest_first_with_version_independent_full_urls() -> None:
    """R4 http.html#history: newest first; fullUrl is [base]/AdverseEvent/[id]."""
    bundle = adverse_event_bundle(ENTRIES, base_url=BASE, next_url=None, self_url=SELF)

    sequences = [e["extension"][0]["valueInteger"] for e in bundle["entry"]]
    assert sequences == [20, 19, 18, 17]
    assert bundle["entry"][0]["fullUrl"] == f"{BASE}/fhir/AdverseEvent/ROM-001-AE01"
    assert bundle["entry"][0]["response"]["location"] == "AdverseEvent/ROM-001-AE01/_history/2"


def test_no_names_or_birth_dates_anywhere() -> None:
    """Even a case that wrongly carries them: only named fields are ever copied."""
    leaky = _case(name="Giulia Rossi", birth_date="2013-05-04", patient_name="Giulia Rossi")
    bundle = adverse_event_bundle(
        [_entry(1, "created", leaky), *ENTRIES], base_url=BASE, next_url=None, self_url=SELF
    )
    text = json.dumps(bundle)

    keys = {key for key, _ in _walk(bundle)}
    assert "name" not in keys
    assert "birthDate" not in keys
    assert "Giulia" not in text
    assert "2013-05-04" not in text
    assert _resources(bundle)[1]["subject"] == {
        "type": "Patient",
        "identifier": {"system": f"{BASE}/study-ids", "value": "ROM-001"},
        "display": "ROM-001",
    }


def test_one_resource_per_case_one_version_per_entry(bundle: dict[str, Any]) -> None:
    crs, _, _, nullified = _resources(bundle)

    assert crs["id"] == nullified["id"] == "ROM-001-AE01"
    assert (crs["meta"]["versionId"], nullified["meta"]["versionId"]) == ("1", "2")
    assert nullified["meta"]["lastUpdated"] == "2026-03-05T11:00:00+00:00"
    assert crs["identifier"] == {"system": f"{BASE}/adverse-events", "value": "ROM-001-AE01"}


def test_meddra_coding_only_when_given(bundle: dict[str, Any]) -> None:
    crs, infection, _, _ = _resources(bundle)

    assert crs["event"] == {"text": "Cytokine release syndrome"}
    assert infection["event"] == {
        "text": "Pneumonia",
        "coding": [
            {
                "system": "https://www.meddra.org",
                "code": "10035664",
                "version": "27.1",
                "display": "Pneumonia",
            }
        ],
    }


@pytest.mark.parametrize(
    ("index", "seriousness", "outcome", "severity"),
    [
        (0, "Non-serious", "resolved", "mild"),
        (1, "Serious", "recovering", "severe"),
        (2, "Serious", "fatal", "severe"),
    ],
)
def test_seriousness_outcome_and_severity_codes(
    bundle: dict[str, Any], index: int, seriousness: str, outcome: str, severity: str
) -> None:
    resource = _resources(bundle)[index]

    assert resource["seriousness"]["coding"] == [
        {"system": f"{HL7}/adverse-event-seriousness", "code": seriousness, "display": seriousness}
    ]
    assert resource["outcome"]["coding"][0]["system"] == f"{HL7}/adverse-event-outcome"
    assert resource["outcome"]["coding"][0]["code"] == outcome
    assert resource["severity"]["coding"][0]["system"] == f"{HL7}/adverse-event-severity"
    assert resource["severity"]["coding"][0]["code"] == severity


@pytest.mark.parametrize(
    ("grade", "severity"), [(1, "mild"), (2, "moderate"), (3, "severe"), (4, "severe")]
)
def test_severity_follows_grade(grade: int, severity: str) -> None:
    bundle = adverse_event_bundle(
        [_entry(1, "created", _case(grade=grade))], base_url=BASE, next_url=None, self_url=SELF
    )

    assert _resources(bundle)[0]["severity"]["coding"][0]["code"] == severity


def test_ungraded_event_has_no_severity_and_no_grade() -> None:
    case = _case(grade=None, grade_scale=None)
    bundle = adverse_event_bundle(
        [_entry(1, "created", case)], base_url=BASE, next_url=None, self_url=SELF
    )
    resource = _resources(bundle)[0]

    assert "severity" not in resource
    assert _extension(resource, "ae-grade") == []


def test_seriousness_criteria_carry_our_code_and_r4s(bundle: dict[str, Any]) -> None:
    fatal = _resources(bundle)[2]

    criteria = [
        e["valueCodeableConcept"]["coding"] for e in _extension(fatal, "ae-seriousness-criterion")
    ]
    assert [[c["code"] for c in coding] for coding in criteria] == [
        ["death", "SeriousResultsInDeath"],
        ["life_threatening", "SeriousIsLifeThreatening"],
    ]
    assert _extension(_resources(bundle)[0], "ae-seriousness-criterion") == []


def test_grade_extension_round_trips_through_the_model(bundle: dict[str, Any]) -> None:
    fatal = AdverseEvent.model_validate(_resources(bundle)[2])

    (grade,) = [e for e in fatal.extension or [] if e.url == f"{SD}/ae-grade"]
    parts = {part.url: part.valueInteger or part.valueCode for part in grade.extension or []}
    assert parts == {"grade": 5, "scale": "ctcae_v5"}


def test_dates_onset_end_and_awareness(bundle: dict[str, Any]) -> None:
    fatal = _resources(bundle)[2]

    assert fatal["date"] == "2026-01-10"  # R4 AdverseEvent.date: when it occurred
    assert fatal["detected"] == "2026-01-11"
    assert _extension(fatal, "ae-end") == [{"url": f"{SD}/ae-end", "valueDate": "2026-03-03"}]
    assert _extension(fatal, "ae-last-info-date")[0]["valueDate"] == "2026-03-04"
    assert _extension(_resources(bundle)[0], "ae-end") == []


def test_causality_product_and_study(bundle: dict[str, Any]) -> None:
    infection = _resources(bundle)[1]

    (suspect,) = infection["suspectEntity"]
    assert suspect["instance"]["identifier"]["value"] == "cd19-car-t-pediatric-autoimmune"
    assert suspect["causality"][0]["assessment"]["coding"][0]["code"] == "possibly_related"
    assert infection["study"][0]["identifier"]["value"] == "cd19-car-t-pediatric-autoimmune|1.0"


def test_source_and_reporter(bundle: dict[str, Any]) -> None:
    _, infection, fatal, _ = _resources(bundle)

    assert _extension(fatal, "ae-source")[0]["valueString"] == "Autopsy report"
    assert _extension(fatal, "ae-reporter-qualification")[0]["valueCode"] == (
        "other_health_professional"
    )
    assert _extension(infection, "ae-source") == []


def test_pseudonymous_demographics(bundle: dict[str, Any]) -> None:
    infection = _resources(bundle)[1]

    assert _extension(infection, "ae-subject-sex")[0]["valueCode"] == "M"
    assert _extension(infection, "ae-site-country")[0]["valueCode"] == "IT"
    assert _extension(infection, "ae-age-at-onset")[0]["valueAge"] == {
        "value": 9,
        "unit": "a",
        "system": "http://unitsofmeasure.org",
        "code": "a",
    }


def test_infant_age_is_under_one_year() -> None:
    """R4's age-1 wants a positive value, so age 0 becomes "< 1 a"."""
    bundle = adverse_event_bundle(
        [_entry(1, "created", _case(age_at_onset_years=0))],
        base_url=BASE,
        next_url=None,
        self_url=SELF,
    )

    age = _extension(_resources(bundle)[0], "ae-age-at-onset")[0]["valueAge"]
    assert (age["comparator"], age["value"]) == ("<", 1)


def test_nullified_version_is_kept_and_marked_as_modifier(bundle: dict[str, Any]) -> None:
    crs, _, _, nullified = _resources(bundle)

    assert nullified["modifierExtension"] == [{"url": f"{SD}/ae-status", "valueCode": "nullified"}]
    assert _extension(nullified, "ae-nullify-reason")[0]["valueString"] == (
        "Entered for the wrong patient"
    )
    assert _extension(nullified, "ae-change")[0]["valueCode"] == "nullified"
    assert "Nullified: Entered for the wrong patient" in nullified["text"]["div"]
    assert nullified["event"] == crs["event"]  # still readable
    assert "modifierExtension" not in crs


def test_narrative_is_escaped_well_formed_xhtml() -> None:
    hostile = '<script>alert("x")</script> & <b onclick="y">bold</b>\x07'
    bundle = adverse_event_bundle(
        [_entry(1, "created", _case(narrative=hostile))],
        base_url=BASE,
        next_url=None,
        self_url=SELF,
    )
    div = _resources(bundle)[0]["text"]["div"]

    root = ET.fromstring(div)
    assert root.tag == XHTML_DIV
    assert [child.tag.split("}")[1] for child in root] == ["p", "p"]
    assert "<script" not in div
    assert "&lt;script&gt;" in div
    assert root[1].text == '<script>alert("x")</script> & <b onclick="y">bold</b>'


@pytest.mark.parametrize("case_id", ["ROM 001/AE_01", "x" * 80, "ROM-001-AE-01-" + "é" * 60])
def test_fhir_id_is_valid_and_distinct(case_id: str) -> None:
    rid = fhir_id(case_id)

    AdverseEvent.model_validate(
        {
            "resourceType": "AdverseEvent",
            "id": rid,
            "actuality": "actual",
            "subject": {"display": "x"},
        }
    )
    assert len(rid) <= 64
    assert rid != fhir_id(case_id + "x")


def test_valid_case_id_is_kept() -> None:
    assert fhir_id("ROM-001-AE01") == "ROM-001-AE01"


def test_entry_whose_case_disagrees_is_refused() -> None:
    entry = CRS | {"version": 3}

    with pytest.raises(ValueError, match="envelope ROM-001-AE01 v3"):
        adverse_event_bundle([entry], base_url=BASE, next_url=None, self_url=SELF)


@pytest.mark.parametrize(
    ("field", "value"),
    [("outcome", "better"), ("seriousness_criteria", ["boredom"])],
)
def test_unmappable_codes_are_refused(field: str, value: Any) -> None:
    entry = _entry(1, "created", _case(**{field: value}))

    with pytest.raises(ValueError, match="unknown"):
        adverse_event_bundle([entry], base_url=BASE, next_url=None, self_url=SELF)


def test_every_vocabulary_word_has_a_fhir_mapping() -> None:
    """A word added to the vocabulary must not reach the feed unmapped."""
    assert set(CATEGORY_DISPLAY) == {c.value for c in vocabulary.Category}
    assert set(RELATEDNESS_DISPLAY) == {r.value for r in vocabulary.Relatedness}
    assert set(SERIOUSNESS_CRITERIA) == {s.value for s in vocabulary.Seriousness}
    assert set(OUTCOMES) == {o.value for o in vocabulary.CaseOutcome}
    assert set(CHANGES) == {c.value for c in vocabulary.Change}


# -- issue 15: the text written directly is what json.dumps wrote of the dicts ------------

EDGE_GOLDEN = Path(__file__).with_name("fhir_edge_bundle.golden.json")
# What the feed's own data rarely holds: an infant, no age, unknown codes (a newer
# vocabulary than this code's), no grade or a grade without a scale, ``date`` and
# ``datetime`` values instead of ISO strings, no country and no reporter, text that xhtml
# and JSON must escape (a control character XML forbids, an emoji beyond the BMP).
EDGE = [
    _entry(21, "created", _case(case_id="ROM-002-AE01", age_at_onset_years=0, grade=0,
                                grade_scale=None, pre_existing=True, site_country=None)),
    _entry(22, "updated", _case(case_id="ROM-003-AE01", version=2, age_at_onset_years=None,
                                grade=None, grade_scale=None, category="vascular",
                                relatedness="related_by_rechallenge", reporter_qualification=None,
                                onset_date=date(2026, 2, 1), end_date=date(2026, 2, 9),
                                recorded_at=datetime(2026, 2, 10, 8, 0, tzinfo=UTC),
                                term='Rash "maculo-papular" <10% BSA> & itch \u00e9\U0001f600',
                                narrative="line\x0bbreak\ttab\r\nend \\ backslash",
                                source="Parent's diary", meddra_code="10037844",
                                meddra_version=None, serious=True,
                                seriousness_criteria=["disability", "congenital_anomaly"],
                                outcome="recovered_with_sequelae")),
    _entry(23, "nullified", _case(case_id="ROM 004/AE 01", version=3, status="nullified",
                                  nullify_reason=None, grade=3)),
]  # fmt: skip


def test_text_is_what_the_dicts_were() -> None:
    """The golden file was written by the dict-based serializer (before issue 15)."""
    text = "".join(
        adverse_event_bundle_json([*ENTRIES, *EDGE], base_url=BASE, next_url=NEXT, self_url=SELF)
    )
    if os.environ.get("UPDATE_FEED_GOLDEN") == "1":
        EDGE_GOLDEN.write_text(json.dumps(text, ensure_ascii=False) + "\n")
    assert text == json.loads(EDGE_GOLDEN.read_text())
    assert "".join(
        adverse_event_bundle_json([], base_url=BASE, next_url=None, self_url=SELF)
    ) == json.dumps(  # no entry: no empty array
        {"resourceType": "Bundle", "type": "history", "link": [{"relation": "self", "url": SELF}]},
        separators=(",", ":"),
    )


def test_edge_cases_are_valid_r4() -> None:
    bundle = adverse_event_bundle(EDGE, base_url=BASE, next_url=None, self_url=SELF)
    Bundle.model_validate(bundle)
    for entry in bundle["entry"]:
        AdverseEvent.model_validate(entry["resource"])
        ET.fromstring(entry["resource"]["text"]["div"])  # well-formed xhtml

"""The pharmacovigilance feed as a FHIR R4 ``history`` Bundle of ``AdverseEvent`` resources.

Pure: feed entries (plain dicts) in, a JSON-ready dict out; no clock, no database and no
FHIR library. Pseudonymous like the feed: the subject is the study id, never a name or a
birth date.

One case is one ``AdverseEvent`` (``id`` from the case id); each feed entry is one version
of it (``meta.versionId``), so a FHIR server that replays the bundle keeps one resource
per case instead of counting a follow-up as a second event.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from surveillance.kit.fhir_conformance import (
    code_system_url,
    definition_url,
    fhir_base,
    fhir_id,
)

HL7 = "http://terminology.hl7.org/CodeSystem"
# HL7 terminology gives MedDRA this system (terminology.hl7.org/CodeSystem/mdr is retired).
MEDDRA = "https://www.meddra.org"
UCUM = "http://unitsofmeasure.org"
XHTML = "http://www.w3.org/1999/xhtml"

# Characters XML 1.0 forbids: one of them would make the narrative's xhtml unparseable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

CATEGORY_DISPLAY = {
    "malignancy": "Malignancy",
    "neurologic": "Neurologic disorder",
    "autoimmune": "Autoimmune or rheumatologic disorder",
    "hematologic": "Hematologic disorder",
    "infection": "Infection",
    "crs": "Cytokine release syndrome",
    "icans": "Immune effector cell-associated neurotoxicity syndrome",
    "iec_hs": "Immune effector cell-associated HLH-like syndrome",
    "other": "Other",
}
RELATEDNESS_DISPLAY = {
    "related": "Related",
    "probably_related": "Probably related",
    "possibly_related": "Possibly related",
    "unlikely_related": "Unlikely related",
    "not_related": "Not related",
    "not_assessed": "Not assessed",
}
# Criterion -> (our display, the R4 adverse-event-seriousness sub-code under "Serious").
SERIOUSNESS_CRITERIA = {
    "death": ("Results in death", "SeriousResultsInDeath"),
    "life_threatening": ("Life-threatening", "SeriousIsLifeThreatening"),
    "hospitalization": (
        "Requires or prolongs hospitalization",
        "SeriousResultsInHospitalization",
    ),
    "disability": ("Persistent or significant disability", "SeriousResultsInDisability"),
    "congenital_anomaly": ("Congenital anomaly or birth defect", "SeriousIsBirthDefect"),
    # R4 defines this code as "an important medical event that requires medical judgement".
    "other_medically_important": (
        "Other medically important condition",
        "SeriousRequiresPreventImpairment",
    ),
}
# Case outcome -> R4 adverse-event-outcome (code, display).
OUTCOMES = {
    "recovered": ("resolved", "Resolved"),
    "recovering": ("recovering", "Recovering"),
    "not_recovered": ("ongoing", "Ongoing"),
    "recovered_with_sequelae": ("resolvedWithSequelae", "Resolved with Sequelae"),
    "fatal": ("fatal", "Fatal"),
    "unknown": ("unknown", "Unknown"),
}
# Feed change -> (request method, response status) of the history entry.
CHANGES = {
    "created": ("POST", "201 Created"),
    "updated": ("PUT", "200 OK"),
    "nullified": ("PUT", "200 OK"),
}


def adverse_event_bundle(
    entries: Sequence[Mapping[str, Any]],
    *,
    base_url: str,
    next_url: str | None,
    self_url: str,
) -> dict[str, Any]:
    """A page of the feed as a ``history`` Bundle.

    ``base_url`` is the configured ``SURVEILLANCE_BASE_URL`` (never a request's ``Host``):
    identifier systems must not change with the proxy a consumer came through.
    R4 (http.html#history) sorts a history newest first, so the page's entries are listed
    in reverse feed order; each carries its feed sequence (an extension), and ``next``
    still leads to the newer entries after this page.
    """
    base = base_url.rstrip("/")
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history", "link": links}
    if entries:  # FHIR JSON forbids empty arrays
        bundle["entry"] = [_bundle_entry(entry, base) for entry in reversed(entries)]
    return bundle


def adverse_event_url(base_url: str, resource_id: str) -> str:
    """Where a consumer reads the case's latest version (``/_history/[vid]``: one version)."""
    return f"{fhir_base(base_url)}/AdverseEvent/{resource_id}"


def adverse_event(case: Mapping[str, Any], *, change: str, base_url: str) -> dict[str, Any]:
    """One case version as an R4 ``AdverseEvent``."""
    base = base_url.rstrip("/")
    resource: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": fhir_id(case["case_id"]),
        "meta": {"versionId": str(case["version"]), "lastUpdated": _iso(case["recorded_at"])},
        "text": _narrative(case),
        "extension": _extensions(case, change, base),
        "identifier": {"system": f"{base}/adverse-events", "value": case["case_id"]},
        "actuality": "actual",
        # No HL7 adverse-event-category code (product problems, wrong dose...) fits a
        # clinical event; the binding is extensible, so our own code system stands alone.
        "category": [_concept(_local(base, "ae-category", case["category"], CATEGORY_DISPLAY))],
        "event": _event(case),
        "subject": _subject(case, base),
        "date": _iso(case["onset_date"]),  # R4: "when the event occurred"
        "detected": _iso(case["awareness_date"]),
        "seriousness": _seriousness(case["serious"]),
        "severity": _severity(case.get("grade")),
        "outcome": _outcome(case["outcome"]),
        "suspectEntity": [_suspect_entity(case, base)],
        "study": [_study(case["product"], base)],
    }
    if case["status"] == "nullified":
        # A modifier: a consumer that does not know it must not take the event as valid.
        resource["modifierExtension"] = [
            {"url": definition_url(base, "ae-status"), "valueCode": "nullified"}
        ]
    return {key: value for key, value in resource.items() if value is not None}


def _bundle_entry(entry: Mapping[str, Any], base: str) -> dict[str, Any]:
    case = _checked_case(entry)
    resource = adverse_event(case, change=entry["change"], base_url=base)
    method, status = _change(entry["change"])
    rid, version = resource["id"], case["version"]
    return {
        # The feed's cursor, so a consumer can resume from any entry of the page.
        "extension": [
            {"url": definition_url(base, "feed-sequence"), "valueInteger": entry["sequence"]}
        ],
        # R4: [base]/[type]/[id], version-independent (the version is in response.location);
        # [base] is the FHIR base {base}/fhir, where the CodeSystems and definitions live.
        "fullUrl": adverse_event_url(base, rid),
        "resource": resource,
        "request": {
            "method": method,
            "url": "AdverseEvent" if method == "POST" else f"AdverseEvent/{rid}",
        },
        "response": {
            "status": status,
            "location": f"AdverseEvent/{rid}/_history/{version}",
            "etag": f'W/"{version}"',
            "lastModified": _iso(case["recorded_at"]),
        },
    }


def _checked_case(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """The entry's case, refusing an entry whose envelope and case disagree."""
    case: Mapping[str, Any] = entry["case"]
    if (case["case_id"], case["version"]) != (entry["case_id"], entry["version"]):
        raise ValueError(
            f"feed entry {entry['sequence']}: envelope {entry['case_id']} v{entry['version']}"
            f" holds case {case['case_id']} v{case['version']}"
        )
    return case


def _change(change: str) -> tuple[str, str]:
    try:
        return CHANGES[change]
    except KeyError:
        raise ValueError(f"unknown feed change {change!r}") from None


def _event(case: Mapping[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {"text": case["term"]}
    if case.get("meddra_code"):
        coding = {"system": MEDDRA, "code": case["meddra_code"], "display": case["term"]}
        if case.get("meddra_version"):
            coding["version"] = case["meddra_version"]
        event["coding"] = [coding]
    return event


def _subject(case: Mapping[str, Any], base: str) -> dict[str, Any]:
    """A logical reference by study id: nothing that names the patient."""
    study_id = case["study_id"]
    return {
        "type": "Patient",
        "identifier": {"system": f"{base}/study-ids", "value": study_id},
        "display": study_id,
    }


def _seriousness(serious: bool) -> dict[str, Any]:
    # R4 spells these "Serious" / "Non-serious"; the lower-case codes are R5's.
    code = "Serious" if serious else "Non-serious"
    return _concept({"system": f"{HL7}/adverse-event-seriousness", "code": code, "display": code})


def _severity(grade: int | None) -> dict[str, Any] | None:
    if grade is None:
        return None
    code = "mild" if grade <= 1 else "moderate" if grade == 2 else "severe"
    coding = {"system": f"{HL7}/adverse-event-severity", "code": code, "display": code.title()}
    return _concept(coding)


def _outcome(outcome: str) -> dict[str, Any]:
    try:
        code, display = OUTCOMES[outcome]
    except KeyError:
        raise ValueError(f"unknown case outcome {outcome!r}") from None
    return _concept({"system": f"{HL7}/adverse-event-outcome", "code": code, "display": display})


def _suspect_entity(case: Mapping[str, Any], base: str) -> dict[str, Any]:
    product = case["product"]
    relatedness = _local(base, "ae-causality", case["relatedness"], RELATEDNESS_DISPLAY)
    return {
        "instance": {
            "type": "Medication",  # R4's closest target for a cell therapy product
            "identifier": {"system": f"{base}/protocols", "value": product["protocol_id"]},
            "display": product["name"],
        },
        "causality": [{"assessment": _concept(relatedness)}],
    }


def _study(product: Mapping[str, Any], base: str) -> dict[str, Any]:
    protocol_id, version = product["protocol_id"], product["protocol_version"]
    return {
        "type": "ResearchStudy",
        "identifier": {"system": f"{base}/protocol-versions", "value": f"{protocol_id}|{version}"},
        "display": f"{protocol_id} version {version}",
    }


def _extensions(case: Mapping[str, Any], change: str, base: str) -> list[dict[str, Any]]:
    """What R4 AdverseEvent has no element for, each under our own definition URL."""
    values: list[tuple[str, str, Any]] = [
        ("ae-change", "valueCode", change),
        ("ae-end", "valueDate", _iso_or_none(case.get("end_date"))),
        ("ae-last-info-date", "valueDate", _iso(case["last_info_date"])),
        ("ae-expected", "valueBoolean", case["expected"]),
        ("ae-pre-existing", "valueBoolean", case.get("pre_existing", False)),
        ("ae-subject-sex", "valueCode", case["sex"]),
        ("ae-age-at-onset", "valueAge", _age(case.get("age_at_onset_years"))),
        ("ae-site-country", "valueCode", case.get("site_country")),
        ("ae-reporter-qualification", "valueCode", case.get("reporter_qualification")),
        ("ae-source", "valueString", case.get("source") or None),
        ("ae-nullify-reason", "valueString", case.get("nullify_reason") or None),
    ]
    extensions = [
        {"url": definition_url(base, name), kind: value}
        for name, kind, value in values
        if value is not None
    ]
    extensions += [_criterion(code, base) for code in case.get("seriousness_criteria", ())]
    grade = _grade(case.get("grade"), case.get("grade_scale"), base)
    return extensions if grade is None else [*extensions, grade]


def _criterion(code: str, base: str) -> dict[str, Any]:
    """One seriousness criterion: ours and R4's code for the same concept."""
    try:
        display, hl7_code = SERIOUSNESS_CRITERIA[code]
    except KeyError:
        raise ValueError(f"unknown seriousness criterion {code!r}") from None
    ours = {
        "system": code_system_url(base, "seriousness-criteria"),
        "code": code,
        "display": display,
    }
    theirs = {"system": f"{HL7}/adverse-event-seriousness", "code": hl7_code}
    return {
        "url": definition_url(base, "ae-seriousness-criterion"),
        "valueCodeableConcept": {"coding": [ours, theirs], "text": display},
    }


def _grade(grade: int | None, scale: str | None, base: str) -> dict[str, Any] | None:
    if grade is None:
        return None
    parts: list[dict[str, Any]] = [{"url": "grade", "valueInteger": grade}]
    if scale is not None:
        parts.append({"url": "scale", "valueCode": scale})
    return {"url": definition_url(base, "ae-grade"), "extension": parts}


def _age(years: int | None) -> dict[str, Any] | None:
    if years is None:
        return None
    age: dict[str, Any] = {"value": years, "unit": "a", "system": UCUM, "code": "a"}
    if years < 1:  # R4's age-1 wants a positive value: an infant is "under one year"
        age.update(value=1, comparator="<")
    return age


def _narrative(case: Mapping[str, Any]) -> dict[str, str]:
    """The term, the nullification and the reporter's free text, escaped into xhtml."""
    paragraphs = [case["term"]]
    if case["status"] == "nullified":
        paragraphs.insert(0, f"Nullified: {case.get('nullify_reason') or 'no reason given'}")
    if case.get("narrative"):
        paragraphs.append(case["narrative"])
    body = "".join(f"<p>{html.escape(_NOT_XML.sub('', text))}</p>" for text in paragraphs)
    # "additional": the free text is in no structured element.
    return {"status": "additional", "div": f'<div xmlns="{XHTML}">{body}</div>'}


def _local(base: str, system: str, code: str, displays: Mapping[str, str]) -> dict[str, str]:
    # A code we have no display for still travels: the consumer sees it, not a gap.
    return {
        "system": code_system_url(base, system),
        "code": code,
        "display": displays.get(code, code),
    }


def _concept(coding: Mapping[str, str]) -> dict[str, Any]:
    return {"coding": [dict(coding)], "text": coding.get("display", coding["code"])}


def _iso(value: str | date) -> str:
    """Feed values are ISO strings already; ``date``/``datetime`` are accepted too."""
    return value.isoformat() if isinstance(value, date) else value


def _iso_or_none(value: str | date | None) -> str | None:
    return None if value is None else _iso(value)

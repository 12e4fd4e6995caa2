"""The pharmacovigilance feed as a FHIR R4 ``history`` Bundle of ``AdverseEvent`` resources.

Pure: feed entries (plain dicts) in, JSON out; no clock, no database and no FHIR library.
Pseudonymous like the feed: the subject is the study id, never a name or a birth date.

Written as JSON text directly, not as nested dicts handed to ``json.dumps``: a page of
1000 entries was ~150 000 small dicts, and building and dumping them was three quarters
of a FHIR page's time (issue 15). What never changes for a base URL (extension URLs, coded
concepts, a product's reference) is written once per base and reused; only the values of
an entry are escaped per entry, with the escaping ``json.dumps`` uses. The text is the
same, byte for byte, as ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` of
the dicts it replaced (tests/surveillance/http/api/test_api_feed_bytes.py), and the tests
validate it with fhir.resources' models (``adverse_event_bundle`` parses it back).

One case is one ``AdverseEvent`` (``id`` from the case id); each feed entry is one version
of it (``meta.versionId``), so a FHIR server that replays the bundle keeps one resource
per case instead of counting a follow-up as a second event.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from functools import lru_cache
from json.encoder import encode_basestring
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
    """A page of the feed as a ``history`` Bundle (a dict: the text, parsed)."""
    chunks = adverse_event_bundle_json(
        entries, base_url=base_url, next_url=next_url, self_url=self_url
    )
    bundle: dict[str, Any] = json.loads("".join(chunks))
    return bundle


def adverse_event_bundle_json(
    entries: Sequence[Mapping[str, Any]],
    *,
    base_url: str,
    next_url: str | None,
    self_url: str,
) -> Iterator[str]:
    """A page of the feed as a ``history`` Bundle, in JSON text: the opening, each entry,
    the closing (join them, or send them as they come).

    ``base_url`` is the configured ``SURVEILLANCE_BASE_URL`` (never a request's ``Host``):
    identifier systems must not change with the proxy a consumer came through.
    R4 (http.html#history) sorts a history newest first, so the page's entries are listed
    in reverse feed order; each carries its feed sequence (an extension), and ``next``
    still leads to the newer entries after this page.
    """
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    opening = f'{{"resourceType":"Bundle","type":"history","link":{_dumps(links)}'
    if not entries:  # FHIR JSON forbids empty arrays
        yield opening + "}"
        return
    text = _text_of(base_url.rstrip("/"))
    separator = ',"entry":['
    for entry in reversed(entries):
        yield opening + separator + _bundle_entry(entry, text)
        opening, separator = "", ","
    yield "]}"


def adverse_event_url(base_url: str, resource_id: str) -> str:
    """Where a consumer reads the case's latest version (``/_history/[vid]``: one version)."""
    return f"{fhir_base(base_url)}/AdverseEvent/{resource_id}"


def adverse_event(case: Mapping[str, Any], *, change: str, base_url: str) -> dict[str, Any]:
    """One case version as an R4 ``AdverseEvent``."""
    text = _text_of(base_url.rstrip("/"))
    resource: dict[str, Any] = json.loads(
        _adverse_event(case, change, text, fhir_id(case["case_id"]))
    )
    return resource


# -- the JSON text ------------------------------------------------------------------------

# A str as a JSON string, escaped as json.dumps(ensure_ascii=False) escapes it (the C
# function json.dumps itself calls).
_string: Callable[[str], str] = encode_basestring


def _dumps(value: Any) -> str:
    """``value`` as the response writes it (starlette's JSONResponse: compact, UTF-8)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _value(value: Any) -> str:
    """One JSON value; strings, booleans and integers (nearly all) without json.dumps."""
    kind = value.__class__
    if kind is str:
        return _string(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    return _dumps(value)


class _Text:
    """What the JSON of every entry shares for one base URL, written once."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.full_url = adverse_event_url(base, "")
        self.case_system = _string(f"{base}/adverse-events")
        self.study_system = _string(f"{base}/study-ids")
        # '{"url":"<our extension name>",' for each extension
        self.extension = {
            name: f'{{"url":{_string(definition_url(base, name))},'
            for name in ("ae-change", *_EXTENSIONS, "feed-sequence", "ae-grade")
        }
        self.nullified = _dumps(
            [{"url": definition_url(base, "ae-status"), "valueCode": "nullified"}]
        )
        self.serious = {flag: _dumps(_seriousness(flag)) for flag in (True, False)}
        self.severity = {grade: _dumps(_severity(grade)) for grade in (1, 2, 3)}
        self.outcome = {name: _dumps(_outcome(name)) for name in OUTCOMES}
        self.criterion = {code: _dumps(_criterion(code, base)) for code in SERIOUSNESS_CRITERIA}
        self.category = {
            code: _dumps(_concept(_local(base, "ae-category", code, CATEGORY_DISPLAY)))
            for code in CATEGORY_DISPLAY
        }
        self.relatedness = {
            code: _dumps(_concept(_local(base, "ae-causality", code, RELATEDNESS_DISPLAY)))
            for code in RELATEDNESS_DISPLAY
        }
        self.studies: dict[tuple[str, str, str], tuple[str, str]] = {}  # few products

    def product(self, product: Mapping[str, Any]) -> tuple[str, str]:
        """The suspect entity's instance and the study, for a product."""
        key = (product["protocol_id"], product["protocol_version"], product["name"])
        written = self.studies.get(key)
        if written is None:
            instance = {
                "type": "Medication",  # R4's closest target for a cell therapy product
                "identifier": {"system": f"{self.base}/protocols", "value": key[0]},
                "display": key[2],
            }
            written = (_dumps(instance), _dumps(_study(product, self.base)))
            if len(self.studies) < 1000:
                self.studies[key] = written
        return written


@lru_cache(maxsize=8)
def _text_of(base: str) -> _Text:
    return _Text(base)


def _bundle_entry(entry: Mapping[str, Any], text: _Text) -> str:
    case = _checked_case(entry)
    change = entry["change"]
    method, status = _change(change)
    rid, version = fhir_id(case["case_id"]), case["version"]
    resource = _adverse_event(case, change, text, rid)
    request_url = "AdverseEvent" if method == "POST" else f"AdverseEvent/{rid}"
    etag = f'W/"{version}"'
    # The feed's cursor, so a consumer can resume from any entry of the page.
    # R4: [base]/[type]/[id], version-independent (the version is in response.location);
    # [base] is the FHIR base {base}/fhir, where the CodeSystems and definitions live.
    return (
        f'{{"extension":[{text.extension["feed-sequence"]}"valueInteger":'
        f"{_value(entry['sequence'])}}}],"
        f'"fullUrl":{_string(text.full_url + rid)},"resource":{resource},'
        f'"request":{{"method":{_string(method)},"url":{_string(request_url)}}},'
        f'"response":{{"status":{_string(status)},'
        f'"location":{_string(f"AdverseEvent/{rid}/_history/{version}")},'
        f'"etag":{_string(etag)},'
        f'"lastModified":{_value(_iso(case["recorded_at"]))}}}}}'
    )


def _adverse_event(case: Mapping[str, Any], change: str, text: _Text, rid: str) -> str:
    """One case version as an R4 ``AdverseEvent``, in JSON text."""
    instance, study = text.product(case["product"])
    relatedness = case["relatedness"]
    category = case["category"]
    grade = case.get("grade")
    parts = [
        f'{{"resourceType":"AdverseEvent","id":{_string(rid)},',
        f'"meta":{{"versionId":{_string(str(case["version"]))},',
        f'"lastUpdated":{_value(_iso(case["recorded_at"]))}}},',
        f'"text":{_narrative_json(case)},',
        f'"extension":[{",".join(_extensions(case, change, text))}],',
        f'"identifier":{{"system":{text.case_system},"value":{_value(case["case_id"])}}},',
        # No HL7 adverse-event-category code (product problems, wrong dose...) fits a
        # clinical event; the binding is extensible, so our own code system stands alone.
        '"actuality":"actual","category":[',
        text.category.get(category)
        or _dumps(_concept(_local(text.base, "ae-category", category, CATEGORY_DISPLAY))),
        f'],"event":{_event(case)},',
        f'"subject":{_subject(case, text)}',
    ]
    onset, awareness = _iso(case["onset_date"]), _iso(case["awareness_date"])
    if onset is not None:
        parts.append(f',"date":{_value(onset)}')  # R4: "when the event occurred"
    if awareness is not None:
        parts.append(f',"detected":{_value(awareness)}')
    parts.append(f',"seriousness":{text.serious[bool(case["serious"])]}')
    if grade is not None:
        parts.append(f',"severity":{text.severity[1 if grade <= 1 else 2 if grade == 2 else 3]}')
    outcome = text.outcome.get(case["outcome"]) or _dumps(_outcome(case["outcome"]))
    assessment = text.relatedness.get(relatedness) or _dumps(
        _concept(_local(text.base, "ae-causality", relatedness, RELATEDNESS_DISPLAY))
    )
    parts += [
        f',"outcome":{outcome}',
        f',"suspectEntity":[{{"instance":{instance},"causality":[{{"assessment":{assessment}}}]}}]',
        f',"study":[{study}]',
    ]
    if case["status"] == "nullified":
        # A modifier: a consumer that does not know it must not take the event as valid.
        parts.append(f',"modifierExtension":{text.nullified}')
    parts.append("}")
    return "".join(parts)


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


def _event(case: Mapping[str, Any]) -> str:
    term = _value(case["term"])
    if not case.get("meddra_code"):
        return f'{{"text":{term}}}'
    coding = f'{{"system":"{MEDDRA}","code":{_value(case["meddra_code"])},"display":{term}'
    if case.get("meddra_version"):
        coding += f',"version":{_value(case["meddra_version"])}'
    return f'{{"text":{term},"coding":[{coding}}}]}}'


def _subject(case: Mapping[str, Any], text: _Text) -> str:
    """A logical reference by study id: nothing that names the patient."""
    study_id = _value(case["study_id"])
    return (
        f'{{"type":"Patient","identifier":{{"system":{text.study_system},"value":{study_id}}},'
        f'"display":{study_id}}}'
    )


# The extensions with one value, in the order they are written:
# name -> (value key, the case's value).
_EXTENSIONS: dict[str, tuple[str, Callable[[Mapping[str, Any]], Any]]] = {
    "ae-end": ("valueDate", lambda case: _iso_or_none(case.get("end_date"))),
    "ae-last-info-date": ("valueDate", lambda case: _iso(case["last_info_date"])),
    "ae-expected": ("valueBoolean", lambda case: case["expected"]),
    "ae-pre-existing": ("valueBoolean", lambda case: case.get("pre_existing", False)),
    "ae-subject-sex": ("valueCode", lambda case: case["sex"]),
    "ae-age-at-onset": ("valueAge", lambda case: _age(case.get("age_at_onset_years"))),
    "ae-site-country": ("valueCode", lambda case: case.get("site_country")),
    "ae-reporter-qualification": ("valueCode", lambda case: case.get("reporter_qualification")),
    "ae-source": ("valueString", lambda case: case.get("source") or None),
    "ae-nullify-reason": ("valueString", lambda case: case.get("nullify_reason") or None),
}


def _extensions(case: Mapping[str, Any], change: str, text: _Text) -> list[str]:
    """What R4 AdverseEvent has no element for, each under our own definition URL."""
    opening = text.extension
    written = [f'{opening["ae-change"]}"valueCode":{_value(change)}}}']
    for name, (kind, value_of) in _EXTENSIONS.items():
        value = value_of(case)
        if value is not None:
            written.append(f'{opening[name]}"{kind}":{_value(value)}}}')
    for code in case.get("seriousness_criteria", ()):
        criterion = text.criterion.get(code)
        written.append(criterion or _dumps(_criterion(code, text.base)))
    grade = case.get("grade")
    if grade is not None:
        scale = case.get("grade_scale")
        parts = f'{{"url":"grade","valueInteger":{_value(grade)}}}'
        if scale is not None:
            parts += f',{{"url":"scale","valueCode":{_value(scale)}}}'
        written.append(f'{opening["ae-grade"]}"extension":[{parts}]}}')
    return written


def _narrative_json(case: Mapping[str, Any]) -> str:
    """The term, the nullification and the reporter's free text, escaped into xhtml."""
    paragraphs = [case["term"]]
    if case["status"] == "nullified":
        paragraphs.insert(0, f"Nullified: {case.get('nullify_reason') or 'no reason given'}")
    if case.get("narrative"):
        paragraphs.append(case["narrative"])
    body = "".join(f"<p>{html.escape(_NOT_XML.sub('', text))}</p>" for text in paragraphs)
    div = f'<div xmlns="{XHTML}">{body}</div>'
    # "additional": the free text is in no structured element.
    return f'{{"status":"additional","div":{_string(div)}}}'


# -- the coded parts, as dicts (written once per base URL by _Text) -----------------------


def _seriousness(serious: bool) -> dict[str, Any]:
    # R4 spells these "Serious" / "Non-serious"; the lower-case codes are R5's.
    code = "Serious" if serious else "Non-serious"
    return _concept({"system": f"{HL7}/adverse-event-seriousness", "code": code, "display": code})


def _severity(grade: int) -> dict[str, Any]:
    code = "mild" if grade <= 1 else "moderate" if grade == 2 else "severe"
    coding = {"system": f"{HL7}/adverse-event-severity", "code": code, "display": code.title()}
    return _concept(coding)


def _outcome(outcome: str) -> dict[str, Any]:
    try:
        code, display = OUTCOMES[outcome]
    except KeyError:
        raise ValueError(f"unknown case outcome {outcome!r}") from None
    return _concept({"system": f"{HL7}/adverse-event-outcome", "code": code, "display": display})


def _study(product: Mapping[str, Any], base: str) -> dict[str, Any]:
    protocol_id, version = product["protocol_id"], product["protocol_version"]
    return {
        "type": "ResearchStudy",
        "identifier": {"system": f"{base}/protocol-versions", "value": f"{protocol_id}|{version}"},
        "display": f"{protocol_id} version {version}",
    }


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


def _age(years: int | None) -> dict[str, Any] | None:
    if years is None:
        return None
    age: dict[str, Any] = {"value": years, "unit": "a", "system": UCUM, "code": "a"}
    if years < 1:  # R4's age-1 wants a positive value: an infant is "under one year"
        age.update(value=1, comparator="<")
    return age


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

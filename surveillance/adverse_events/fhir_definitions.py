"""The local terminology, extensions and identifier systems the FHIR feed uses, as R4
resources served at their canonical URLs (see ``kit.fhir_conformance``).

Pure, like ``fhir``: the base URL in, JSON-ready dicts out. The codes come from the same
tables the feed codes with, so a served CodeSystem cannot miss a code the feed sends.
"""

from __future__ import annotations

from typing import Any

from surveillance.adverse_events.fhir import (
    CATEGORY_DISPLAY,
    RELATEDNESS_DISPLAY,
    SERIOUSNESS_CRITERIA,
)
from surveillance.kit import fhir_conformance as conformance
from surveillance.kit.fhir_conformance import CodeSystemSpec, Extension, IdentifierSystem

CODE_SYSTEMS: dict[str, CodeSystemSpec] = {
    "ae-category": CodeSystemSpec(
        "AdverseEventCategory",
        "The clinical category of an adverse event of special interest",
        CATEGORY_DISPLAY,
    ),
    "ae-causality": CodeSystemSpec(
        "AdverseEventCausality",
        "The investigator's assessment of relatedness to the gene therapy product",
        RELATEDNESS_DISPLAY,
    ),
    "seriousness-criteria": CodeSystemSpec(
        "SeriousnessCriteria",
        "Why a serious adverse event is serious (ICH E2A criteria)",
        {code: display for code, (display, _) in SERIOUSNESS_CRITERIA.items()},
    ),
}


EXTENSIONS: dict[str, Extension] = {
    "feed-sequence": Extension(
        "integer", "Bundle.entry", "The entry's sequence in the feed: a cursor to resume from"
    ),
    "ae-change": Extension("code", "AdverseEvent", "created, updated or nullified"),
    "ae-end": Extension("date", "AdverseEvent", "When the event ended"),
    "ae-last-info-date": Extension("date", "AdverseEvent", "Date of the latest information"),
    "ae-expected": Extension("boolean", "AdverseEvent", "Expected per the reference safety info"),
    "ae-pre-existing": Extension("boolean", "AdverseEvent", "The condition pre-existed"),
    "ae-subject-sex": Extension("code", "AdverseEvent", "The subject's sex (F, M, U)"),
    "ae-age-at-onset": Extension("Age", "AdverseEvent", "The subject's age at onset"),
    "ae-site-country": Extension("code", "AdverseEvent", "ISO 3166-1 alpha-2 of the site"),
    "ae-reporter-qualification": Extension(
        "code", "AdverseEvent", "The primary reporter's qualification"
    ),
    "ae-source": Extension("string", "AdverseEvent", "Where the report came from"),
    "ae-nullify-reason": Extension("string", "AdverseEvent", "Why the case was nullified"),
    "ae-seriousness-criterion": Extension(
        "CodeableConcept", "AdverseEvent", "One seriousness criterion met", repeats=True
    ),
    "ae-grade": Extension(
        None,
        "AdverseEvent",
        "The toxicity grade and the grading scale",
        parts=(("grade", "integer", True), ("scale", "code", False)),
    ),
    "ae-status": Extension(
        "code",
        "AdverseEvent",
        "nullified: the case was entered in error and must not be counted",
        modifier=True,
    ),
}
# The feed's own identifier system, at [base]/[path] (study ids and protocols are the
# patients' and the protocols').
IDENTIFIER_SYSTEMS: dict[str, IdentifierSystem] = {
    "adverse-events": IdentifierSystem(
        "Adverse event case ids",
        "A case id: the study id and the case's number (ROM-009-AE01); one id per case, "
        "whatever its versions.",
    ),
}


def code_system(base_url: str, system_id: str) -> dict[str, Any] | None:
    """The R4 CodeSystem ``system_id``, or None if the feed has no such system."""
    spec = CODE_SYSTEMS.get(system_id)
    return None if spec is None else conformance.code_system(base_url, system_id, spec)


def structure_definition(base_url: str, extension_id: str) -> dict[str, Any] | None:
    """The R4 StructureDefinition of extension ``extension_id``, or None if unknown."""
    spec = EXTENSIONS.get(extension_id)
    if spec is None:
        return None
    return conformance.structure_definition(base_url, extension_id, spec)

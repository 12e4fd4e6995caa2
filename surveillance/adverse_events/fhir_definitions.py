"""The local terminology and extensions the FHIR feed uses, as R4 resources served at
their canonical URLs (``[base]/fhir/CodeSystem/[id]``, ``[base]/fhir/StructureDefinition/[id]``).

Pure, like ``fhir``: the base URL in, JSON-ready dicts out. The codes come from the same
tables the feed codes with, so a served CodeSystem cannot miss a code the feed sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from surveillance.adverse_events.fhir import (
    CATEGORY_DISPLAY,
    RELATEDNESS_DISPLAY,
    SERIOUSNESS_CRITERIA,
    code_system_url,
    definition_url,
)

FHIR_VERSION = "4.0.1"
PUBLISHER = "ltfu-surveillance"
EXTENSION_BASE = "http://hl7.org/fhir/StructureDefinition/Extension"

_CODE_SYSTEMS: dict[str, tuple[str, str, Mapping[str, str]]] = {
    "ae-category": (
        "AdverseEventCategory",
        "The clinical category of an adverse event of special interest",
        CATEGORY_DISPLAY,
    ),
    "ae-causality": (
        "AdverseEventCausality",
        "The investigator's assessment of relatedness to the gene therapy product",
        RELATEDNESS_DISPLAY,
    ),
    "seriousness-criteria": (
        "SeriousnessCriteria",
        "Why a serious adverse event is serious (ICH E2A criteria)",
        {code: display for code, (display, _) in SERIOUSNESS_CRITERIA.items()},
    ),
}


class _Extension(NamedTuple):
    value_type: str | None  # None: a complex extension (see _PARTS)
    context: str
    description: str
    repeats: bool = False
    modifier: bool = False


_EXTENSIONS: dict[str, _Extension] = {
    "feed-sequence": _Extension(
        "integer", "Bundle.entry", "The entry's sequence in the feed: a cursor to resume from"
    ),
    "ae-change": _Extension("code", "AdverseEvent", "created, updated or nullified"),
    "ae-end": _Extension("date", "AdverseEvent", "When the event ended"),
    "ae-last-info-date": _Extension("date", "AdverseEvent", "Date of the latest information"),
    "ae-expected": _Extension("boolean", "AdverseEvent", "Expected per the reference safety info"),
    "ae-pre-existing": _Extension("boolean", "AdverseEvent", "The condition pre-existed"),
    "ae-subject-sex": _Extension("code", "AdverseEvent", "The subject's sex (F, M, U)"),
    "ae-age-at-onset": _Extension("Age", "AdverseEvent", "The subject's age at onset"),
    "ae-site-country": _Extension("code", "AdverseEvent", "ISO 3166-1 alpha-2 of the site"),
    "ae-reporter-qualification": _Extension(
        "code", "AdverseEvent", "The primary reporter's qualification"
    ),
    "ae-source": _Extension("string", "AdverseEvent", "Where the report came from"),
    "ae-nullify-reason": _Extension("string", "AdverseEvent", "Why the case was nullified"),
    "ae-seriousness-criterion": _Extension(
        "CodeableConcept", "AdverseEvent", "One seriousness criterion met", repeats=True
    ),
    "ae-grade": _Extension(None, "AdverseEvent", "The toxicity grade and the grading scale"),
    "ae-status": _Extension(
        "code",
        "AdverseEvent",
        "nullified: the case was entered in error and must not be counted",
        modifier=True,
    ),
}
# The parts of a complex extension: (url, value type, required).
_PARTS = {"ae-grade": (("grade", "integer", True), ("scale", "code", False))}


def code_system_ids() -> tuple[str, ...]:
    return tuple(_CODE_SYSTEMS)


def structure_definition_ids() -> tuple[str, ...]:
    return tuple(_EXTENSIONS)


def code_system(base_url: str, system_id: str) -> dict[str, Any] | None:
    """The R4 CodeSystem ``system_id``, or None if there is no such system."""
    if system_id not in _CODE_SYSTEMS:
        return None
    name, description, displays = _CODE_SYSTEMS[system_id]
    return {
        "resourceType": "CodeSystem",
        "id": system_id,
        "url": code_system_url(base_url.rstrip("/"), system_id),
        "name": name,
        "status": "active",
        "publisher": PUBLISHER,
        "description": description,
        "caseSensitive": True,
        "content": "complete",
        "count": len(displays),
        "concept": [{"code": code, "display": display} for code, display in displays.items()],
    }


def structure_definition(base_url: str, extension_id: str) -> dict[str, Any] | None:
    """The R4 StructureDefinition of extension ``extension_id``, or None if unknown."""
    spec = _EXTENSIONS.get(extension_id)
    if spec is None:
        return None
    url = definition_url(base_url.rstrip("/"), extension_id)
    root: dict[str, Any] = {
        "id": "Extension",
        "path": "Extension",
        "short": spec.description,
        "definition": spec.description,
        "min": 0,
        "max": "*" if spec.repeats else "1",
    }
    if spec.modifier:
        root.update(isModifier=True, isModifierReason=spec.description)
    return {
        "resourceType": "StructureDefinition",
        "id": extension_id,
        "url": url,
        "name": "".join(part.title() for part in extension_id.split("-")),
        "status": "active",
        "publisher": PUBLISHER,
        "description": spec.description,
        "fhirVersion": FHIR_VERSION,
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": spec.context}],
        "type": "Extension",
        "baseDefinition": EXTENSION_BASE,
        "derivation": "constraint",
        "differential": {"element": [root, *_elements(extension_id, url, spec)]},
    }


def _elements(extension_id: str, url: str, spec: _Extension) -> list[dict[str, Any]]:
    url_element = {"id": "Extension.url", "path": "Extension.url", "fixedUri": url}
    if spec.value_type is not None:
        return [
            {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
            url_element,
            {
                "id": "Extension.value[x]",
                "path": "Extension.value[x]",
                "min": 1,
                "type": [{"code": spec.value_type}],
            },
        ]
    elements: list[dict[str, Any]] = [
        {
            "id": "Extension.extension",
            "path": "Extension.extension",
            "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"},
        }
    ]
    for part, value_type, required in _PARTS[extension_id]:
        slice_id = f"Extension.extension:{part}"
        elements += [
            {
                "id": slice_id,
                "path": "Extension.extension",
                "sliceName": part,
                "min": 1 if required else 0,
                "max": "1",
            },
            {"id": f"{slice_id}.url", "path": "Extension.extension.url", "fixedUri": part},
            {
                "id": f"{slice_id}.value[x]",
                "path": "Extension.extension.value[x]",
                "type": [{"code": value_type}],
            },
        ]
    return [
        *elements,
        url_element,
        {"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"},
    ]

"""Our own FHIR R4 terminology and definitions, as resources served at their canonical URLs.

Pure: a base URL and a feature's tables in, JSON-ready dicts out. Each feature (the
adverse-event feed, the PlanDefinition, the CarePlan) declares the extensions, code
systems and identifier systems it uses; these builders turn one declaration into the R4
resource a validator or a consumer finds when it resolves the URL:

* a ``CodeSystem`` at ``[base]/fhir/CodeSystem/[id]`` (``url`` is that URL);
* a ``StructureDefinition`` of an extension at ``[base]/fhir/StructureDefinition/[id]``;
* a ``NamingSystem`` at an identifier system's URL (``[base]/study-ids``...): R4 has no
  ``url`` on NamingSystem, so its ``uniqueId`` (type uri) is that URL. An Identifier's
  ``system`` is a URL that describes the namespace of its values; this is the description.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

FHIR_VERSION = "4.0.1"
PUBLISHER = "ltfu-surveillance"
EXTENSION_BASE = "http://hl7.org/fhir/StructureDefinition/Extension"
# NamingSystem.date is 1..1: when these identifier systems were first published.
NAMING_SYSTEMS_DATE = "2026-01-01"

_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_NOT_ID = re.compile(r"[^A-Za-z0-9\-.]")


def fhir_id(value: str) -> str:
    """``value`` if it is a valid FHIR id, else a cleaned prefix plus a hash (no collisions)."""
    if _FHIR_ID.fullmatch(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    return f"{_NOT_ID.sub('-', value)[:51]}-{digest}"


def fhir_base(base_url: str) -> str:
    """The FHIR base: ``[base]`` of R4's ``[base]/[type]/[id]``."""
    return f"{base_url.rstrip('/')}/fhir"


def definition_url(base_url: str, name: str) -> str:
    """The canonical URL of our extension ``name``."""
    return f"{fhir_base(base_url)}/StructureDefinition/{name}"


def code_system_url(base_url: str, name: str) -> str:
    """The canonical URL of our code system ``name``."""
    return f"{fhir_base(base_url)}/CodeSystem/{name}"


def canonical_target(url: str) -> str:
    """The URL to resolve for a canonical: R4 (references.html#canonical) appends the
    version after ``|`` and a contained fragment after ``#``; neither is fetched."""
    return url.split("#", 1)[0].split("|", 1)[0]


class Extension(NamedTuple):
    """An extension we define: its value type (None: complex, see ``parts``), where it
    may appear (a FHIRPath element context), and what it means."""

    value_type: str | None
    context: str
    description: str
    repeats: bool = False
    modifier: bool = False
    # A complex extension's parts: (url, value type, required).
    parts: tuple[tuple[str, str, bool], ...] = ()


class CodeSystemSpec(NamedTuple):
    name: str  # R4's computable name (cps-0: starts upper case)
    description: str
    concepts: Mapping[str, str]  # code -> display
    title: str | None = None


class IdentifierSystem(NamedTuple):
    """An identifier system we issue, at ``[base]/[path]``."""

    name: str
    description: str


def code_system(base_url: str, system_id: str, spec: CodeSystemSpec) -> dict[str, Any]:
    """The R4 CodeSystem ``system_id``: every code, so ``content`` is complete."""
    resource: dict[str, Any] = {
        "resourceType": "CodeSystem",
        "id": system_id,
        "url": code_system_url(base_url, system_id),
        "name": spec.name,
        "title": spec.title,
        "status": "active",
        "publisher": PUBLISHER,
        "description": spec.description,
        "caseSensitive": True,
        "content": "complete",
        "count": len(spec.concepts),
        "concept": [{"code": code, "display": text} for code, text in spec.concepts.items()],
    }
    return {key: value for key, value in resource.items() if value is not None}


def structure_definition(base_url: str, extension_id: str, spec: Extension) -> dict[str, Any]:
    """The R4 StructureDefinition of our extension ``extension_id``."""
    url = definition_url(base_url, extension_id)
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
        "differential": {"element": [root, *_elements(url, spec)]},
    }


def naming_system(base_url: str, path: str, spec: IdentifierSystem) -> dict[str, Any]:
    """The R4 NamingSystem of our identifier system at ``[base]/[path]``."""
    return {
        "resourceType": "NamingSystem",
        "id": fhir_id(path),
        "name": spec.name,
        "status": "active",
        "kind": "identifier",
        "date": NAMING_SYSTEMS_DATE,
        "publisher": PUBLISHER,
        "description": spec.description,
        "uniqueId": [{"type": "uri", "value": f"{base_url.rstrip('/')}/{path}", "preferred": True}],
    }


def _elements(url: str, spec: Extension) -> list[dict[str, Any]]:
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
    return [*_slices(spec.parts), url_element, _no_value()]


def _slices(parts: Sequence[tuple[str, str, bool]]) -> list[dict[str, Any]]:
    elements: list[dict[str, Any]] = [
        {
            "id": "Extension.extension",
            "path": "Extension.extension",
            "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"},
        }
    ]
    for part, value_type, required in parts:
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
    return elements


def _no_value() -> dict[str, Any]:
    return {"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"}

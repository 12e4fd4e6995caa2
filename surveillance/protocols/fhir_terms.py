"""The PlanDefinition's and CarePlan's terminology from the protocols, and the
PlanDefinition's extensions, as R4 resources served at their canonical URLs.

Pure: the registry and the base URL in, JSON-ready dicts out. A code system is built from
every loaded version of a protocol (newest display wins), so a code any stored calendar
row was planned with is defined, whichever version planned it.
"""

from __future__ import annotations

from typing import Any

import rules
from surveillance.kit import fhir_conformance as conformance
from surveillance.kit.fhir_conformance import CodeSystemSpec, Extension, IdentifierSystem
from surveillance.protocols.fhir_plan import (
    action_id,
    assessments_system_id,
    plan_definition,
    plan_definition_id,
    results_system_id,
)

CATEGORY_SYSTEM = "assessment-category"
EXTENSIONS: dict[str, Extension] = {
    "visit-window": Extension(
        "Range",
        "PlanDefinition.action",
        "The visit window: days before (low, <= 0) and after (high) the due date in which "
        "doing the assessment counts as on time",
    ),
    "evidence-basis": Extension(
        "code",
        "PlanDefinition.action",
        "Why the assessment is required: regulatory, guideline or local-default",
    ),
    "starts": Extension(
        "code",
        "PlanDefinition.action",
        "with_infusion: planned from the infusion; when_started: only once a result or an "
        "event starts it",
    ),
}
IDENTIFIER_SYSTEMS: dict[str, IdentifierSystem] = {
    "protocols": IdentifierSystem(
        "Follow-up protocols",
        "A follow-up protocol's id (the product's long-term follow-up plan).",
    ),
    "protocol-versions": IdentifierSystem(
        "Follow-up protocol versions",
        "One version of a follow-up protocol, as protocol id|version.",
    ),
}


def structure_definition(base_url: str, extension_id: str) -> dict[str, Any] | None:
    spec = EXTENSIONS.get(extension_id)
    if spec is None:
        return None
    return conformance.structure_definition(base_url, extension_id, spec)


def code_system(
    registry: rules.ProtocolRegistry, base_url: str, system_id: str
) -> dict[str, Any] | None:
    """The CodeSystem ``system_id`` (assessment categories, a protocol's assessments, an
    assessment's coded results), or None if no protocol has it."""
    spec = _code_systems(registry).get(system_id)
    return None if spec is None else conformance.code_system(base_url, system_id, spec)


def plan_definition_resource(
    registry: rules.ProtocolRegistry, base_url: str, resource_id: str
) -> dict[str, Any] | None:
    """By the canonical (``[base]/fhir/PlanDefinition/[protocol id]``): the newest
    version, as R4 resolves a canonical without ``|version``; by a version's resource id
    (``[protocol id]-[version]``): that version. None if neither names one."""
    protocols = registry.all()  # oldest version first
    newest = {protocol.id: protocol for protocol in protocols}
    protocol = newest.get(resource_id) or next(
        (p for p in protocols if plan_definition_id(p) == resource_id), None
    )
    return None if protocol is None else plan_definition(protocol, base_url=base_url)


def _code_systems(registry: rules.ProtocolRegistry) -> dict[str, CodeSystemSpec]:
    categories: dict[str, str] = {}
    assessments: dict[str, dict[str, str]] = {}
    results: dict[str, tuple[str, str, dict[str, str]]] = {}
    for protocol in registry.all():  # oldest first: the newest display is written last
        names = assessments.setdefault(protocol.id, {})
        for rule_id, rule in protocol.rules.items():
            spec = rule.spec
            categories[spec.category] = spec.category.replace("_", " ").capitalize()
            names[rule_id] = spec.name
            result = spec.result
            if isinstance(result, rules.CodedResult):
                _, _, values = results.setdefault(
                    results_system_id(protocol.id, rule_id), (protocol.id, rule_id, {})
                )
                values.update(result.values)
    systems = {
        CATEGORY_SYSTEM: CodeSystemSpec(
            "AssessmentCategory", "The category of a follow-up assessment", categories
        )
    }
    for protocol_id, names in assessments.items():
        systems[assessments_system_id(protocol_id)] = CodeSystemSpec(
            _name(protocol_id, "Assessments"),
            f"The assessments of protocol {protocol_id} (codes: the rule ids)",
            names,
        )
    for system_id, (protocol_id, rule_id, values) in results.items():
        systems[system_id] = CodeSystemSpec(
            _name(f"{protocol_id}-{action_id(rule_id)}", "Result"),
            f"The coded results of {rule_id} in protocol {protocol_id}",
            values,
        )
    return systems


def _name(identifier: str, suffix: str) -> str:
    """A computable name (R4 cps-0: starts upper case, letters, digits, ``_``)."""
    words = identifier.replace("-", " ").replace(".", " ").split()
    name = "".join(word[:1].upper() + word[1:] for word in words) + suffix
    return name if name[:1].isalpha() else f"P{name}"

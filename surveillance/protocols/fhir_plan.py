"""A protocol version as a FHIR R4 ``PlanDefinition`` (type clinical-protocol).

Pure: a loaded ``rules.Protocol`` in, a JSON-ready dict out; no database, no FHIR library
(the tests validate the output with fhir.resources' R4B models).

How the calendar's rules map onto R4 (PlanDefinition.action):

* one action per assessment rule (``id``: the rule id with ``-`` for ``_``, since
  ``relatedAction.actionId`` is an R4 ``id``), plus one ``infusion`` action: the anchor
  every infusion-relative time is measured from (recorded, never planned);
* each time point is a nested action. Its distance from the anchor is a
  ``relatedAction`` (``after-start`` of ``infusion``, ``before-start`` for a negative offset)
  with ``offsetDuration`` in the protocol's own unit (d, wk, mo, a): R4 lets ``offset[x]``
  be a Duration or a Range, and ``timing[x]`` alone cannot say "relative to another
  action". A recurrence (``every Y1 from Y2 to Y15``) is one nested action: the offset to
  its first point plus ``timingTiming`` (period, unit, count). A birth-anchored point is
  ``timingAge``. A trigger-anchored point is related (``after-end``) to each assessment
  whose result starts it; started by an event only, it is a ``timingDuration`` after it.
  ``offsetRange`` would have to mix months with the window's days (R4's Range has one
  unit per bound and the engine counts calendar months, not 30.44-day ones), so the visit
  window is an extension (``visit-window``, a Range in days around the due date);
* applicability (diagnoses, ages at the due date) is a ``condition`` of kind
  ``applicability``; a result branch is a ``condition`` of kind ``start`` (or ``stop``) on
  the action it starts (or stops), with a ``relatedAction`` to the assessment whose result
  decides; an event that starts an assessment likewise. Expressions are FHIRPath over
  variables an evaluator supplies: ``%diagnosis``, ``%ageAtDue`` (years), ``%events``
  (the codes of recorded events) and ``%<rule_id>`` (that assessment's recorded results as
  text, one per occurrence). Each also carries a plain-language ``description``;
* the evidence: the protocol's references are ``relatedArtifact`` (citation); each action
  cites its sources as ``documentation`` (justification) and its basis in an extension.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import rules
from surveillance.kit.fhir_conformance import code_system_url, definition_url, fhir_base, fhir_id

FHIR_JSON = "application/fhir+json"
UCUM = "http://unitsofmeasure.org"
PLAN_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
INFUSION_ACTION = "infusion"
# (start|stop, the rule id or "event:<id>" that decides, its branch or event rule)
Starter = tuple[str, str, Any]
Starters = dict[str, list[Starter]]
# Offset unit -> (UCUM code, also R4 Timing.periodUnit; word).
UNITS = {"D": ("d", "days"), "W": ("wk", "weeks"), "M": ("mo", "months"), "Y": ("a", "years")}


def wants_fhir(format_: str | None, accept: str | None) -> bool:
    """``?format=`` decides; without it, ``Accept: application/fhir+json`` asks for FHIR."""
    if format_ is not None:
        return format_ == "fhir"
    return FHIR_JSON in (accept or "")


def plan_definition_url(base_url: str, protocol_id: str) -> str:
    """The canonical URL of a protocol's PlanDefinition (add ``|version`` for one version)."""
    return f"{fhir_base(base_url)}/PlanDefinition/{protocol_id}"


def plan_definition_id(protocol: rules.Protocol) -> str:
    """The resource id of one version's PlanDefinition (its ``url`` is the protocol's)."""
    return _resource_id(f"{protocol.id}-{protocol.version}")


def assessments_system_id(protocol_id: str) -> str:
    """The id of the CodeSystem of a protocol's assessments (codes: the rule ids)."""
    return fhir_id(f"{protocol_id}-assessments")


def results_system_id(protocol_id: str, rule_id: str) -> str:
    """The id of the CodeSystem of one assessment's coded results."""
    return fhir_id(f"{protocol_id}-{action_id(rule_id)}-result")


def action_id(rule_id: str) -> str:
    """An R4 ``id`` for a rule (rule ids are ``[a-z][a-z0-9_]*``, at most 64 characters)."""
    return rule_id.replace("_", "-")


def plan_definition(protocol: rules.Protocol, *, base_url: str) -> dict[str, Any]:
    """``protocol`` (one version) as an R4 PlanDefinition."""
    base = base_url.rstrip("/")
    spec = protocol.spec
    starters = _starters(protocol)
    actions = [_infusion_action(spec.product)]
    actions += [_action(protocol, rule_id, starters, base) for rule_id in protocol.rules]
    resource: dict[str, Any] = {
        "resourceType": "PlanDefinition",
        "id": plan_definition_id(protocol),
        "url": plan_definition_url(base, protocol.id),
        "identifier": [
            {"system": f"{base}/protocol-versions", "value": f"{protocol.id}|{protocol.version}"}
        ],
        "version": protocol.version,
        "name": _computable_name(protocol.id),
        "title": protocol.title,
        "type": {
            "coding": [
                {"system": PLAN_TYPE, "code": "clinical-protocol", "display": "Clinical Protocol"}
            ]
        },
        "status": "active",
        "subjectCodeableConcept": {
            "coding": [{"system": "http://hl7.org/fhir/resource-types", "code": "Patient"}]
        },
        "description": spec.description or f"{protocol.title}: follow-up after {spec.product}",
        "relatedArtifact": [
            _reference(key, ref, "citation") for key, ref in spec.references.items()
        ],
        "action": actions,
    }
    return {key: value for key, value in resource.items() if value not in (None, [], "")}


def _infusion_action(product: str) -> dict[str, Any]:
    return {
        "id": INFUSION_ACTION,
        "title": "Infusion (the anchor)",
        "description": f"The (last) infusion of {product}: every infusion-relative time of "
        "this plan is measured from its date. Recorded, not planned here.",
    }


def _action(
    protocol: rules.Protocol,
    rule_id: str,
    starters: Starters,
    base: str,
) -> dict[str, Any]:
    rule = protocol.rules[rule_id]
    spec = rule.spec
    refs = protocol.spec.references
    action: dict[str, Any] = {
        "id": action_id(rule_id),
        "extension": [
            {"url": definition_url(base, "evidence-basis"), "valueCode": spec.evidence.basis.value},
            {"url": definition_url(base, "starts"), "valueCode": spec.starts},
        ],
        "title": spec.name,
        "description": spec.description,
        "code": [
            {
                "coding": [
                    {
                        "system": code_system_url(base, "assessment-category"),
                        "code": spec.category,
                    }
                ],
                "text": spec.category,
            }
        ],
        "documentation": [
            _reference(source, refs[source], "justification", note=spec.evidence.note)
            if source in refs
            else {"type": "justification", "label": source, "display": source}
            for source in spec.evidence.sources
        ],
        "condition": [
            *_applicability(protocol, spec.applies_to),
            *(
                _branch_condition(kind, source, branch)
                for kind, source, branch in starters[rule_id]
            ),
        ],
        "relatedAction": _unique(
            {"actionId": action_id(source), "relationship": "after-end"}
            for kind, source, _ in starters[rule_id]
            if kind == "start" and source in protocol.rules
        ),
        "action": list(_time_points(rule_id, spec, starters, protocol, base)),
    }
    return {key: value for key, value in action.items() if value not in (None, [], "")}


def _time_points(
    rule_id: str,
    spec: Any,
    starters: Starters,
    protocol: rules.Protocol,
    base: str,
) -> Iterable[dict[str, Any]]:
    for index, entry in enumerate(spec.schedule, start=1):
        window = entry.window or spec.window
        if entry.at is not None:
            for offset in entry.at:
                point = _point(spec.anchor, offset, rule_id, starters, protocol)
                yield _with_window(
                    {"id": f"{action_id(rule_id)}-{offset}", "title": f"{spec.name}, {offset}"}
                    | point,
                    window,
                    base,
                )
        else:
            count = _recurrence_count(entry.every, entry.start, entry.until)
            point = _point(spec.anchor, entry.start, rule_id, starters, protocol)
            unit_code, _ = UNITS[entry.every.unit]
            repeat: dict[str, Any] = {
                "frequency": 1,
                "period": entry.every.amount,
                "periodUnit": unit_code,
            }
            repeat["count"] = count
            title = f"{spec.name}, every {entry.every} from {entry.start} to {entry.until}"
            yield _with_window(
                {"id": f"{action_id(rule_id)}-{index}", "title": title}
                | point
                | {"timingTiming": {"repeat": repeat}},
                window,
                base,
            )


def _point(
    anchor: Any,
    offset: Any,
    rule_id: str,
    starters: Starters,
    protocol: rules.Protocol,
) -> dict[str, Any]:
    """When one point falls, relative to its anchor."""
    if anchor.value == "birth":
        return {"timingAge": _duration(offset)}
    if anchor.value == "trigger":
        sources = [s for kind, s, _ in starters[rule_id] if kind == "start" and s in protocol.rules]
        if not sources:
            return {"timingDuration": _duration(offset)}
        return {
            "relatedAction": _unique(
                {
                    "actionId": action_id(source),
                    "relationship": "after-end",
                    "offsetDuration": _duration(offset),
                }
                for source in sources
            )
        }
    relationship = "before-start" if offset.amount < 0 else "after-start"
    return {
        "relatedAction": [
            {
                "actionId": INFUSION_ACTION,
                "relationship": relationship,
                "offsetDuration": _duration(offset),
            }
        ]
    }


def _recurrence_count(every: Any, first: Any, last: Any) -> int:
    """How many points ``every`` from ``first`` to ``last`` makes (both ends included)."""
    in_base = {"D": 1, "W": 7, "M": 1, "Y": 12}  # days/weeks, or months/years
    step, start, end = (part.amount * in_base[part.unit] for part in (every, first, last))
    return int((end - start) // step + 1)


def _with_window(action: dict[str, Any], window: Any, base: str) -> dict[str, Any]:
    """The window around the due date, in days (``low`` <= 0 <= ``high``)."""
    before, after = (window.before, window.after) if window is not None else (0, 0)
    extension = {
        "url": definition_url(base, "visit-window"),
        "valueRange": {"low": _days(before), "high": _days(after)},
    }
    return {"extension": [extension], **action}


def _days(days: int) -> dict[str, Any]:
    return {"value": days, "unit": "days", "system": UCUM, "code": "d"}


def _duration(offset: Any) -> dict[str, Any]:
    code, word = UNITS[offset.unit]
    return {"value": abs(offset.amount), "unit": word, "system": UCUM, "code": code}


def _applicability(protocol: rules.Protocol, applies: Any) -> list[dict[str, Any]]:
    conditions = []
    if applies.diagnoses:
        names = protocol.spec.diagnoses
        listed = " | ".join(f"'{dx}'" for dx in applies.diagnoses)
        conditions.append(
            _condition(
                "applicability",
                f"%diagnosis in ({listed})",
                "Diagnosis is one of: " + ", ".join(names.get(dx, dx) for dx in applies.diagnoses),
            )
        )
    ages = []
    if applies.age_from is not None:
        ages.append((f"%ageAtDue >= {applies.age_from}", f"from {applies.age_from} years"))
    if applies.age_below is not None:
        ages.append((f"%ageAtDue < {applies.age_below}", f"below {applies.age_below} years"))
    if ages:
        conditions.append(
            _condition(
                "applicability",
                " and ".join(expr for expr, _ in ages),
                "Age at the due date " + " and ".join(text for _, text in ages),
            )
        )
    return conditions


def _starters(protocol: rules.Protocol) -> Starters:
    """Rule id -> (start|stop, the rule or event that decides, the branch or event)."""
    found: Starters = defaultdict(list)
    for source_id, rule in protocol.rules.items():
        for branch in rule.spec.on_result:
            for target in branch.start:
                found[target].append(("start", source_id, branch))
            for target in branch.stop:
                found[target].append(("stop", source_id, branch))
    for event_id, event in protocol.spec.events.items():
        for target in event.start:
            found[target].append(("start", f"event:{event_id}", event))
        for target in event.stop:
            found[target].append(("stop", f"event:{event_id}", event))
    return found


def _branch_condition(kind: str, source: str, branch: Any) -> dict[str, Any]:
    if source.startswith("event:"):
        event_id = source.removeprefix("event:")
        return _condition(
            kind, f"%events.exists($this = '{event_id}')", f"Event: {branch.description}"
        )
    condition = branch.when or branch.when_all
    test = _fhirpath_test(condition)
    quantifier = "all" if branch.when_all is not None else "exists"
    described = (
        f"every planned {source} result is {condition.describe()}"
        if branch.when_all is not None
        else f"a {source} result is {condition.describe()}"
    )
    if branch.only_at:
        described += " (at " + ", ".join(str(o) for o in branch.only_at) + " only)"
    if branch.note:
        described += f": {branch.note}"
    return _condition(kind, f"%{source}.{quantifier}({test})", described[0].upper() + described[1:])


def _fhirpath_test(condition: Any) -> str:
    if condition.equals is not None:
        return f"$this.lower() = '{_quoted(condition.equals.strip().lower())}'"
    if condition.one_of is not None:
        options = " | ".join(f"'{_quoted(o.strip().lower())}'" for o in condition.one_of)
        return f"$this.lower() in ({options})"
    for bound, operator in (
        (condition.below, "<"),
        (condition.at_most, "<="),
        (condition.above, ">"),
        (condition.at_least, ">="),
    ):
        if bound is not None:
            return f"$this.toDecimal() {operator} {bound:g}"
    raise ValueError("a condition without a test")


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _condition(kind: str, expression: str, description: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "expression": {
            "description": description,
            "language": "text/fhirpath",
            "expression": expression,
        },
    }


def _reference(key: str, ref: Any, kind: str, note: str | None = None) -> dict[str, Any]:
    artifact: dict[str, Any] = {"type": kind, "label": key, "display": ref.title}
    if ref.url:
        artifact["url"] = ref.url
    if note:
        artifact["citation"] = note
    return artifact


def _unique(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _resource_id(value: str) -> str:
    cleaned = "".join(c if (c.isascii() and c.isalnum()) or c in "-." else "-" for c in value)
    return cleaned[:64]


def _computable_name(protocol_id: str) -> str:
    """R4's pdf-0: a name starts upper case, letters, digits and ``_`` only."""
    words = protocol_id.replace("-", " ").split()
    name = "".join(word[:1].upper() + word[1:] for word in words)
    return name if name[:1].isalpha() else f"P{name}"

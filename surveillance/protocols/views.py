"""Protocols as read by people and API clients: summaries, rules, a calendar preview.

The preview is the one ``surveillance calendar`` prints: the same defaults and the same
objects (``rules.PlannedAssessment.as_dict``), so the command line and the API agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from dateutil.relativedelta import relativedelta

import rules
from surveillance.errors import UnknownProtocol
from surveillance.kit.bounds import FIRST_BIRTH, FIRST_INFUSION, check_day
from surveillance.protocols.registry import get_protocol

PREVIEW_AGE_YEARS = 10


def protocol_summary(protocol: rules.Protocol) -> dict[str, Any]:
    spec = protocol.spec
    anchor = spec.follow_up.anchor.replace("_", " ")
    return {
        "id": protocol.id,
        "version": protocol.version,
        "title": protocol.title,
        "product": spec.product,
        "follow_up": f"{spec.follow_up.duration} from the {anchor}",
        "assessments": len(protocol.rules),
    }


def protocol_detail(protocol: rules.Protocol) -> dict[str, Any]:
    spec = protocol.spec
    return {
        **protocol_summary(protocol),
        "description": spec.description,
        "diagnoses": dict(spec.diagnoses),
        "references": {key: ref.model_dump() for key, ref in spec.references.items()},
        "events": {key: event.model_dump() for key, event in spec.events.items()},
        "rules": [_rule(protocol, rule_id) for rule_id in protocol.rules],
    }


def _rule(protocol: rules.Protocol, rule_id: str) -> dict[str, Any]:
    rule = protocol.rules[rule_id]
    spec = rule.spec
    return {
        "id": spec.id,
        "name": spec.name,
        "category": spec.category,
        "anchor": spec.anchor.value,
        "starts": spec.starts,
        "schedule": [_schedule(entry, spec.window) for entry in spec.schedule],
        "time_points": len(rule.points),
        "applies_to": spec.applies_to.model_dump(exclude_none=True),
        "result": result_type_dict(spec.result),
        "on_result": [_branch(branch) for branch in spec.on_result],
        "evidence": {
            "basis": spec.evidence.basis.value,
            "sources": list(spec.evidence.sources),
            "note": spec.evidence.note,
        },
        "description": spec.description,
    }


# ``Any``: the schema classes are private to ``rules``; only their fields are read here.
def result_type_dict(spec: rules.ResultType | None) -> dict[str, Any] | None:
    """What a client needs to build the result field of a form (None: free text)."""
    if spec is None:
        return None
    described: dict[str, Any] = {"type": spec.type}
    if isinstance(spec, rules.CodedResult):
        described["values"] = [{"code": c, "label": label} for c, label in spec.values.items()]
    elif isinstance(spec, rules.QuantityResult):
        described |= {
            "unit": spec.unit,
            "accepts": list(rules.accepted_units(spec)),
            "min": spec.min,
            "max": spec.max,
            "decimals": spec.decimals,
        }
    elif isinstance(spec, rules.OrdinalResult):
        described |= {"min": spec.min, "max": spec.max}
        described["values"] = [
            {"code": str(level), "label": spec.labels.get(level, str(level))}
            for level in range(spec.min, spec.max + 1)
        ]
    return described


def _schedule(entry: Any, default_window: Any) -> dict[str, str]:
    window = entry.window or default_window
    if entry.at is not None:
        when = ", ".join(str(offset) for offset in entry.at)
    else:
        when = f"every {entry.every} from {entry.start} to {entry.until}"
    return {"when": when, "window": window.describe() if window else "on the day"}


def _branch(branch: Any) -> dict[str, Any]:
    condition = branch.when or branch.when_all
    return {
        "when": condition.describe(),
        "every_occurrence": branch.when_all is not None,
        "start": list(branch.start),
        "stop": list(branch.stop),
        "note": branch.note,
    }


@dataclass(frozen=True)
class Preview:
    protocol: rules.Protocol
    birth_date: date
    diagnosis: str
    plan: list[rules.PlannedAssessment]

    def as_list(self) -> list[dict[str, object]]:
        return [planned.as_dict() for planned in self.plan]


def preview_calendar(
    registry: rules.ProtocolRegistry,
    protocol_id: str,
    *,
    infusion: date,
    birth: date | None = None,
    diagnosis: str | None = None,
    sex: str = "F",
    version: str | None = None,
) -> Preview:
    """The calendar ``protocol_id`` gives one infusion (no database).

    Defaults: born ``PREVIEW_AGE_YEARS`` before the infusion, the protocol's first diagnosis.
    Impossible facts raise ``rules.InvalidFacts``.
    """
    check_day(infusion, "infusion", earliest=FIRST_INFUSION)
    if birth is not None:
        check_day(birth, "birth", earliest=FIRST_BIRTH)
    protocol = get_protocol(registry, protocol_id, version)
    born = birth or infusion - relativedelta(years=PREVIEW_AGE_YEARS)
    dx = diagnosis or next(iter(protocol.spec.diagnoses))
    plan = rules.build_calendar(protocol, rules.PatientFacts(born, dx, sex), [infusion])
    return Preview(protocol, born, dx, plan)


def categories(registry: rules.ProtocolRegistry) -> list[str]:
    """Every assessment category of the known protocols (the due list's filter)."""
    return sorted(
        {str(rule.spec.category) for protocol in registry.all() for rule in protocol.rules.values()}
    )


@lru_cache(maxsize=8)  # per registry (one per process); asked on every due-list page
def result_types(registry: rules.ProtocolRegistry) -> dict[str, dict[str, Any]]:
    """Each assessment id's declared result (newest version that declares one), for the
    forms that record it; the server still reads the result by the row's own version."""
    found: dict[str, dict[str, Any]] = {}
    for protocol in registry.all():
        for rule_id in protocol.rules:
            described = result_type_dict(protocol.result_type(rule_id))
            if described is not None:
                found[rule_id] = described
    return found


@lru_cache(maxsize=4096)  # asked for every row of every calendar read; rows share rules
def result_type_of(
    registry: rules.ProtocolRegistry, protocol_id: str, version: str, assessment: str
) -> dict[str, Any] | None:
    """The declared result of one stored row's rule, by the version that planned it
    (shared between callers: read it, do not change it)."""
    try:
        protocol = get_protocol(registry, protocol_id, version)
        return result_type_dict(protocol.result_type(assessment))
    except (UnknownProtocol, KeyError):
        return None

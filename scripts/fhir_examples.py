"""Write docs/fhir/: a PlanDefinition and the demo's first patient's calendar (a
transaction Bundle: the CarePlan and its ServiceRequests), abridged.

    .venv/bin/python scripts/fhir_examples.py [--output-dir docs/fhir]

The demo cohort is loaded into a throw-away SQLite file with a fixed clock (so the
output only changes when the code or the protocol does), the resources are built by the
same functions the API serves (``?format=fhir``) and abridged (a few actions and
activities, the rest dropped: every element kept is as served). Each file, whole and
abridged, is validated with fhir.resources' R4B models and fhirclient's R4 (4.0.1) models
before it is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.plandefinition import PlanDefinition
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhirclient.models.bundle import Bundle as R4Bundle  # type: ignore[import-untyped]
from fhirclient.models.careplan import CarePlan as R4CarePlan  # type: ignore[import-untyped]
from fhirclient.models.plandefinition import (  # type: ignore[import-untyped]
    PlanDefinition as R4PlanDefinition,
)
from fhirclient.models.servicerequest import (  # type: ignore[import-untyped]
    ServiceRequest as R4ServiceRequest,
)

import rules
from surveillance.cli.demo import COHORT, PROTOCOL, load_demo
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.patients.fhir_careplan import care_plan_bundle
from surveillance.patients.views import calendar_dicts
from surveillance.protocols.fhir_plan import plan_definition
from surveillance.records.queries import get_patient

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BASE_URL = "https://ltfu.example.org"
# The actions kept: the anchor, the RCL chain (timing, a recurrence, start/stop branches)
# and one with an applicability condition.
KEPT_ACTIONS = ("infusion", "rcl-test", "rcl-confirm", "rcl-yearly-test", "rcl-archive")
KEPT_PER_STATUS = 1
ENTRY_MODELS: dict[str, tuple[Any, Any]] = {
    "CarePlan": (CarePlan, R4CarePlan),
    "ServiceRequest": (ServiceRequest, R4ServiceRequest),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("docs/fhir"))
    for line in write_examples(parser.parse_args().output_dir):
        sys.stdout.write(line + "\n")


def write_examples(output: Path) -> list[str]:
    """Write both files into ``output``; a line per file on what was validated."""
    registry = rules.ProtocolRegistry.from_directory()
    study_id = COHORT[0][0]
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/demo.db")
        migrate.upgrade(engine)
        with write_session(engine) as session:
            load_demo(session, registry=registry, now=NOW)
        with read_session(engine) as session:
            patient = get_patient(session, study_id)
            calendar = calendar_dicts(session, patient, on=NOW.date(), registry=registry)
            status = patient.status
            version = {row["protocol_version"] for row in calendar}
        engine.dispose()
    (protocol_version,) = version
    protocol = registry.get(PROTOCOL, protocol_version)
    plan = plan_definition(protocol, base_url=BASE_URL)
    care = care_plan_bundle(study_id, status, calendar, base_url=BASE_URL)
    output.mkdir(parents=True, exist_ok=True)
    written = []
    examples: tuple[tuple[str, Any, Any, dict[str, Any], dict[str, Any]], ...] = (
        (
            "plan-definition-example.json",
            PlanDefinition,
            R4PlanDefinition,
            plan,
            _abridged_plan(plan),
        ),
        ("care-plan-bundle-example.json", Bundle, R4Bundle, care, _abridged_care_plan(care)),
    )
    for name, model, r4_model, whole, abridged in examples:
        for resource in (whole, abridged):
            model.model_validate(resource)
            r4_model(resource, strict=True).as_json()  # raises FHIRValidationError
            for entry in resource.get("entry", ()):
                model_, r4_model_ = ENTRY_MODELS[entry["resource"]["resourceType"]]
                model_.model_validate(entry["resource"])
                r4_model_(entry["resource"], strict=True).as_json()
        (output / name).write_text(json.dumps(abridged, indent=2, ensure_ascii=False) + "\n")
        written.append(
            f"{output / name}: {model.__name__} valid (fhir.resources R4B, fhirclient R4),"
            " whole and abridged"
            f" ({_count(whole)} -> {_count(abridged)} actions/activities)"
        )
    return written


def _abridged_plan(plan: dict[str, Any]) -> dict[str, Any]:
    actions = [a for a in plan["action"] if a["id"] in KEPT_ACTIONS]
    applicable = next(
        a
        for a in plan["action"]
        if any(c["kind"] == "applicability" for c in a.get("condition", ()))
    )
    cited = {d["label"] for a in [*actions, applicable] for d in a.get("documentation", ())}
    return plan | {
        "relatedArtifact": [r for r in plan["relatedArtifact"] if r["label"] in cited],
        "action": [*actions, applicable],
    }


def _abridged_care_plan(bundle: dict[str, Any]) -> dict[str, Any]:
    """The first request of each kind, with its activity: completed without a result, with
    a coded one, with a quantity; revoked for each reason; active, overdue, booked."""
    plan_entry, *requests = bundle["entry"]
    activities = {a["reference"]["reference"]: a for a in plan_entry["resource"]["activity"]}
    kept: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, str, bool], int] = {}
    for entry in requests:
        request = entry["resource"]
        activity = activities[entry["fullUrl"]]
        notes = [note["text"] for note in request["note"][1:]]  # the first: when it is due
        outcome = activity.get("outcomeCodeableConcept", [{}])[0]
        result = "coded" if "coding" in outcome else "text" if outcome else ""
        booked = any(e["url"].endswith("/appointment-date") for e in request["extension"])
        kind = (request["status"], notes[0][:7] if notes else "", result, booked)
        if seen.get(kind, 0) < KEPT_PER_STATUS:
            seen[kind] = seen.get(kind, 0) + 1
            kept.append(entry)
    plan = plan_entry["resource"] | {"activity": [activities[e["fullUrl"]] for e in kept]}
    return bundle | {"entry": [plan_entry | {"resource": plan}, *kept]}


def _count(resource: dict[str, Any]) -> int:
    if resource["resourceType"] == "Bundle":
        return len(resource["entry"][0]["resource"]["activity"])
    return len(resource["action"])


if __name__ == "__main__":
    main()

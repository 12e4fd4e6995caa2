"""The protocol as a FHIR R4 PlanDefinition and a patient's calendar as a CarePlan.

Three checks, independent of the code that builds them: fhir.resources' R4B models (8.x
has no R4 package; R4B's PlanDefinition and CarePlan have R4's elements), fhirclient's
models (generated from FHIR 4.0.1, i.e. R4 itself; strict: unknown elements, wrong types
and missing required elements fail), and ``_r4_structure``, which walks the JSON against
what the R4 spec requires and neither model checks: required codes from their value sets,
``relatedAction.actionId`` an R4 ``id`` naming an action of the plan, absolute extension
URLs, UCUM time units, no empty arrays or nulls.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.plandefinition import PlanDefinition
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhirclient.models.bundle import Bundle as R4Bundle
from fhirclient.models.careplan import CarePlan as R4CarePlan
from fhirclient.models.fhirabstractbase import FHIRValidationError
from fhirclient.models.plandefinition import PlanDefinition as R4PlanDefinition
from fhirclient.models.servicerequest import ServiceRequest as R4ServiceRequest
from support.api_support import CAR_T, Api

FHIR_JSON = "application/fhir+json"
BASE = "http://127.0.0.1:8000"  # the configured SURVEILLANCE_BASE_URL, not the Host header
R4_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
RELATIONSHIPS = {
    "before-start", "before", "before-end", "concurrent-with-start", "concurrent",
    "concurrent-with-end", "after-start", "after", "after-end",
}  # fmt: skip
ACTIVITY_STATUSES = {
    "not-started", "scheduled", "in-progress", "on-hold", "completed", "cancelled",
    "stopped", "unknown", "entered-in-error",
}  # fmt: skip
UCUM_TIME = {"s", "min", "h", "d", "wk", "mo", "a"}
PLAN_STATUSES = {
    "draft",
    "active",
    "on-hold",
    "revoked",
    "completed",
    "entered-in-error",
    "unknown",
}
REQUEST_INTENTS = {
    "proposal", "plan", "directive", "order", "original-order", "reflex-order",
    "filler-order", "instance-order", "option",
}  # fmt: skip


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, path)


def _r4_structure(resource: dict[str, Any]) -> None:
    for path, node in _walk(resource):
        assert node not in (None, [], ""), path
        if path.endswith(".extension") and isinstance(node, list):
            assert all(e["url"].startswith(f"{BASE}/fhir/StructureDefinition/") for e in node)
        if isinstance(node, dict) and node.get("system") == "http://unitsofmeasure.org":
            assert node["code"] in UCUM_TIME | {"d"}, path
    assert "id" not in resource or R4_ID.fullmatch(resource["id"])


def _actions(actions: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for action in actions:
        yield action
        yield from _actions(action.get("action", []))


def _plan_definition_structure(plan: dict[str, Any]) -> None:
    _r4_structure(plan)
    assert plan["status"] in {"draft", "active", "retired", "unknown"}  # 1..1, required
    assert re.fullmatch(r"[A-Z][A-Za-z0-9_]{0,254}", plan["name"])  # pdf-0
    ids = [a["id"] for a in _actions(plan["action"])]
    assert len(ids) == len(set(ids))
    for action in _actions(plan["action"]):
        for related in action.get("relatedAction", []):
            assert R4_ID.fullmatch(related["actionId"])
            assert related["actionId"] in ids
            assert related["relationship"] in RELATIONSHIPS
        for condition in action.get("condition", []):
            assert condition["kind"] in {"applicability", "start", "stop"}
            assert condition["expression"]["language"] == "text/fhirpath"
            assert condition["expression"]["expression"]  # R4 exp-1
        timings = [key for key in action if key.startswith("timing")]
        assert len(timings) <= 1  # a choice type: one of timing[x]


@pytest.fixture(scope="module")
def plan(shared_api: Api) -> dict[str, Any]:
    response = shared_api.get(
        f"/api/v1/protocols/{CAR_T}", role="pharmacovigilance", format="fhir", version="1.1"
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    body: dict[str, Any] = response.json()
    return body


class TestPlanDefinition:
    def test_validates_as_r4(self, plan: dict[str, Any]) -> None:
        PlanDefinition.model_validate(plan)
        assert R4PlanDefinition(plan, strict=True).as_json()["resourceType"] == "PlanDefinition"
        _plan_definition_structure(plan)
        assert plan["url"] == f"{BASE}/fhir/PlanDefinition/{CAR_T}"
        assert plan["version"] == "1.1"

    def test_every_protocol_version_validates(self, shared_api: Api) -> None:
        for protocol in shared_api.registry.all():
            response = shared_api.get(
                f"/api/v1/protocols/{protocol.id}", format="fhir", version=protocol.version
            )
            PlanDefinition.model_validate(response.json())
            R4PlanDefinition(response.json(), strict=True).as_json()
            _plan_definition_structure(response.json())
            assert len(response.json()["action"]) == len(protocol.rules) + 1  # + the infusion

    def test_the_rcl_test_at_month_3_within_14_days(self, plan: dict[str, Any]) -> None:
        rcl = next(a for a in plan["action"] if a["id"] == "rcl-test")
        m3 = next(a for a in rcl["action"] if a["id"] == "rcl-test-M3")
        assert m3["relatedAction"] == [
            {
                "actionId": "infusion",
                "relationship": "after-start",
                "offsetDuration": {
                    "value": 3,
                    "unit": "months",
                    "system": "http://unitsofmeasure.org",
                    "code": "mo",
                },
            }
        ]
        window = m3["extension"][0]
        assert window["url"] == f"{BASE}/fhir/StructureDefinition/visit-window"
        assert (window["valueRange"]["low"]["value"], window["valueRange"]["high"]["value"]) == (
            -14,
            14,
        )
        assert [a["id"] for a in rcl["action"]] == ["rcl-test-M3", "rcl-test-M6", "rcl-test-M12"]
        assert {d["label"] for d in rcl["documentation"]} == {"FDA-RCR", "FR-2020-RCR"}
        assert rcl["extension"][0]["valueCode"] == "local-default"  # until RCR is quoted

    def test_a_recurrence_is_a_timing(self, plan: dict[str, Any]) -> None:
        yearly = next(a for a in plan["action"] if a["id"] == "rcl-yearly-test")["action"][0]
        assert yearly["relatedAction"][0]["offsetDuration"]["value"] == 2
        assert yearly["timingTiming"] == {
            "repeat": {"frequency": 1, "period": 1, "periodUnit": "a", "count": 14}
        }

    def test_result_branches_start_and_stop(self, plan: dict[str, Any]) -> None:
        by_id = {a["id"]: a for a in plan["action"]}
        confirm = by_id["rcl-confirm"]
        starts = {c["expression"]["expression"]: c for c in confirm["condition"]}
        start = starts["%rcl_test.exists($this.lower() = 'positive')"]
        assert start["kind"] == "start"
        assert start["expression"]["description"].startswith("A rcl_test result is positive")
        assert {"actionId": "rcl-test", "relationship": "after-end"} in confirm["relatedAction"]
        stops = [c for c in by_id["rcl-yearly-test"]["condition"] if c["kind"] == "stop"]
        assert stops[0]["expression"]["expression"] == "%rcl_test.all($this.lower() = 'negative')"

    def test_applicability_and_references(self, plan: dict[str, Any]) -> None:
        kinds = {c["kind"] for a in plan["action"] for c in a.get("condition", [])}
        assert "applicability" in kinds
        assert {"FDA-RCR"} <= {artifact["label"] for artifact in plan["relatedArtifact"]}

    def test_the_r4_model_refuses_r5_spellings(self, plan: dict[str, Any]) -> None:
        """The second validator is R4 itself: R5's ``targetId`` (R4 ``actionId``) fails."""
        r5 = json.loads(json.dumps(plan).replace('"actionId"', '"targetId"'))
        with pytest.raises(FHIRValidationError):
            R4PlanDefinition(r5, strict=True)

    def test_json_stays_the_default(self, shared_api: Api) -> None:
        response = shared_api.get(f"/api/v1/protocols/{CAR_T}")
        assert response.headers["content-type"] == "application/json"
        assert response.headers["vary"] == "Accept"
        assert "rules" in response.json()

    def test_accept_asks_for_fhir_and_format_overrides_it(self, shared_api: Api) -> None:
        path = f"/api/v1/protocols/{CAR_T}"
        fhir = {**shared_api.headers("nurse"), "Accept": FHIR_JSON}
        response = shared_api.client.get(path, headers=fhir)
        assert response.headers["content-type"] == FHIR_JSON
        assert response.json()["resourceType"] == "PlanDefinition"
        response = shared_api.client.get(path, headers=fhir, params={"format": "json"})
        assert response.headers["content-type"] == "application/json"


def _care_plan_bundle(bundle: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A transaction Bundle as R4 has it, each entry valid on its own: the CarePlan and
    its ServiceRequests, every reference between them an entry's fullUrl."""
    Bundle.model_validate(bundle)
    assert R4Bundle(bundle, strict=True).as_json()["type"] == "transaction"
    assert bundle["type"] == "transaction"
    entries = bundle["entry"]
    full_urls = [entry["fullUrl"] for entry in entries]
    assert len(full_urls) == len(set(full_urls))  # bdl-7
    for entry in entries:
        assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", entry["fullUrl"])
        assert "response" not in entry  # bdl-4
        kind = entry["resource"]["resourceType"]
        system, value = entry["resource"]["identifier"][0].values()
        assert entry["request"]["method"] == "PUT"  # bdl-3: a conditional update
        assert entry["request"]["url"] == f"{kind}?identifier={quote(system, safe='')}%7C" + (
            quote(value, safe="")
        )
        _r4_structure(entry["resource"])
    plan, *requests = (entry["resource"] for entry in entries)
    CarePlan.model_validate(plan)
    assert R4CarePlan(plan, strict=True).as_json()["resourceType"] == "CarePlan"
    for request in requests:
        ServiceRequest.model_validate(request)
        R4ServiceRequest(request, strict=True)
        assert request["status"] in {"active", "completed", "revoked"}
        assert request["intent"] in REQUEST_INTENTS
        assert request["subject"] == plan["subject"]
    assert plan["status"] in PLAN_STATUSES
    assert [a["reference"]["reference"] for a in plan["activity"]] == full_urls[1:]
    for activity in plan["activity"]:
        assert "detail" not in activity  # cpl-3: a reference or a detail
    return plan, requests


class TestCarePlan:
    def test_an_enrolled_patient_after_an_outcome(self, api: Api) -> None:
        study_id = api.enroll(study_id="ROM-301")
        key = f"{study_id}:1:rcl_test:1"
        recorded = api.post(
            f"/api/v1/assessments/{key}/outcome",
            {"outcome": "completed", "date": "2024-04-30", "result": "negative"},
            if_match='"1"',
        )
        assert recorded.status_code == 200, recorded.text
        response = api.get(f"/api/v1/patients/{study_id}/calendar", format="fhir")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == FHIR_JSON
        plan, requests = _care_plan_bundle(response.json())
        assert plan["intent"] == "plan"
        assert plan["instantiatesCanonical"] == [f"{BASE}/fhir/PlanDefinition/{CAR_T}|1.1"]
        assert plan["subject"] == {
            "type": "Patient",
            "identifier": {"system": f"{BASE}/study-ids", "value": study_id},
            "display": study_id,
        }
        text = response.text
        assert "2014-03-01" not in text  # no birth date
        assert "born" not in text
        calendar = api.get(f"/api/v1/patients/{study_id}/calendar").json()
        assert [r["identifier"][0]["value"] for r in requests] == [row["key"] for row in calendar]
        # The reasons carry no date: the windows are the schedule itself, as in the JSON.
        reasons = [c["text"] for r in requests for c in r.get("reasonCode", ())]
        assert reasons
        assert not [reason for reason in reasons if re.search(r"\d{4}-\d{2}-\d{2}", reason)]
        by_key = {r["identifier"][0]["value"]: r for r in requests}
        done = by_key[key]
        assert done["identifier"][0]["system"] == f"{BASE}/assessments"
        assert done["status"] == "completed"
        assert done["intent"] == "plan"
        assert done["occurrencePeriod"] == {"start": "2024-04-16", "end": "2024-05-14"}
        assert done["code"]["coding"][0] == {
            "system": f"{BASE}/fhir/CodeSystem/{CAR_T}-assessments",
            "code": "rcl_test",
            "display": done["code"]["text"],
        }
        assert done["reasonCode"] == [{"text": "month 3 after infusion; window −14/+14 days"}]
        assert done["instantiatesCanonical"] == [f"{BASE}/fhir/PlanDefinition/{CAR_T}|1.1"]
        activity = plan["activity"][calendar.index(next(r for r in calendar if r["key"] == key))]
        assert activity["outcomeCodeableConcept"][0]["coding"][0]["code"] == "negative"
        assert activity["progress"][0]["time"] == "2024-04-30"
        states = {_state(r): r["status"] for r in requests}
        assert states.get("upcoming") == "active"
        overdue = [r for r in requests if _state(r) == "overdue"]
        assert all(any(n["text"].startswith("Overdue") for n in r["note"]) for r in overdue)

    def test_a_reinfusion_cancels_without_naming_its_date(self, api: Api) -> None:
        """The stored status reason is "infusion 2 on <date>": the date stays out."""
        study_id = api.enroll(study_id="ROM-303")
        again = api.post(
            f"/api/v1/patients/{study_id}/infusions",
            {"infusion_date": "2024-06-03"},
            if_match='"1"',
        )
        assert again.status_code == 200, again.text
        response = api.get(f"/api/v1/patients/{study_id}/calendar", format="fhir")
        _, requests = _care_plan_bundle(response.json())
        revoked = [r for r in requests if r["status"] == "revoked"]
        assert revoked
        texts = [n["text"] for r in revoked for n in [*r["note"], *r.get("reasonCode", ())]]
        assert not [text for text in texts if "2024-06-03" in text]
        assert any("infusion 2" in n["text"] for r in revoked for n in r["note"])

    def test_the_same_calendar_gives_the_same_bundle(self, api: Api) -> None:
        """A re-import must hit the same conditional updates (no duplicate requests)."""
        study_id = api.enroll(study_id="ROM-304")
        path = f"/api/v1/patients/{study_id}/calendar"
        assert api.get(path, format="fhir").json() == api.get(path, format="fhir").json()

    def test_another_sites_patient_is_not_found(self, api: Api) -> None:
        api.enroll(study_id="ERL-301", site_id="Erlangen")
        response = api.get("/api/v1/patients/ERL-301/calendar", format="fhir")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    def test_pharmacovigilance_may_not(self, api: Api) -> None:
        api.enroll(study_id="ROM-302")
        response = api.get(
            "/api/v1/patients/ROM-302/calendar", role="pharmacovigilance", format="fhir"
        )
        assert response.status_code == 404  # as for a patient that does not exist: no oracle


def _state(request: dict[str, Any]) -> str:
    (state,) = (e["valueCode"] for e in request["extension"] if e["url"].endswith("-state"))
    return str(state)


def test_the_examples_in_docs_are_what_the_script_writes(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[4]
    path = root / "scripts" / "fhir_examples.py"
    spec = importlib.util.spec_from_file_location("fhir_examples", path)
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.write_examples(tmp_path)
    for name in ("plan-definition-example.json", "care-plan-bundle-example.json"):
        written = (tmp_path / name).read_text()
        assert written == (root / "docs/fhir" / name).read_text(), (
            "regenerate with: .venv/bin/python scripts/fhir_examples.py"
        )

"""A patient's calendar as FHIR R4: a ``CarePlan`` (intent plan) instantiating the
protocol's PlanDefinition, and one ``ServiceRequest`` per assessment, in a ``transaction``
Bundle.

Why a transaction Bundle, not contained resources nor a ``collection``: it is what a
hospital's FHIR server imports in one step, ``POST [base]`` (R4 http.html#transaction),
atomically, resolving the ``urn:uuid`` references between the entries. Each entry is a
conditional update by our identifier (``PUT ServiceRequest?identifier=...``), so importing
the calendar again after it changed updates the same requests (a result recorded, a
window moved) instead of duplicating them. The ServiceRequests are then the EHR's own,
searchable orders (a worklist by date, by status); contained ones would only exist
inside the CarePlan (R4: contained resources have no independent existence, and the
requests do: each assessment has a stable key), and a ``collection`` asks the importer
to write code to unpack it and rewrite the references.

Pure: the calendar as the JSON API gives it (``views.calendar_dicts``) in, a JSON-ready
dict out. Pseudonymous like the adverse-event feed: the subject is the study id under
``[base]/study-ids``, never a name; no birth or infusion date anywhere (the engine's
reason and the stored status reason go through ``public_reason``: "18th birthday (born
...)" is "18th birthday", "infusion 2 on ..." is "infusion 2"); the windows are dates, as
in the JSON calendar, for the same roles.

A ServiceRequest (R4 request-status, intent ``plan``: the protocol plans it, a clinician
of the site orders it; we authorise nothing):

* pending: ``active``; its state on the day (upcoming, due, overdue) is an extension,
  and overdue is also a note; a booked appointment is an extension (its date);
* completed: ``completed``; the result is the CarePlan activity's ``outcomeCodeableConcept``
  (a coded result with its code, any other as text) and the date performed its ``progress``;
* missed, not done, cancelled, not required: ``revoked`` ("terminated prior to the
  known full completion... no further activity should occur"), the status and its
  reason as a note.

``occurrencePeriod`` is the visit window; ``reasonCode`` the public reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any
from urllib.parse import quote

from surveillance.kit import fhir_conformance as conformance
from surveillance.kit.fhir_conformance import (
    Extension,
    IdentifierSystem,
    code_system_url,
    definition_url,
)
from surveillance.patients.due_list import public_reason
from surveillance.protocols.fhir_plan import (
    action_id,
    assessments_system_id,
    plan_definition_url,
    results_system_id,
)
from surveillance.protocols.fhir_terms import CATEGORY_SYSTEM

# Patient status -> CarePlan.status: the plan is followed until the patient leaves it.
PLAN_STATUS = {
    "active": "active",
    "lost_to_follow_up": "active",  # the site is still expected to find them
    "completed": "completed",
    "deceased": "revoked",
    "withdrawn": "revoked",
    "transferred": "revoked",
}
# Stored assessment status -> ServiceRequest.status.
REQUEST_STATUS = {"pending": "active", "completed": "completed"}
STATUS_REASON = {
    "missed": "Missed: the window closed without the assessment",
    "not_done": "Not done",
    "cancelled": "Cancelled",
    "not_required": "Not required",
}
EXTENSIONS: dict[str, Extension] = {
    "plan-action": Extension(
        "string", "ServiceRequest", "The id of the PlanDefinition action this request carries out"
    ),
    "assessment-state": Extension(
        "code",
        "ServiceRequest",
        "The assessment's state on the day: upcoming, due, overdue (pending), or its stored "
        "status (completed, missed, not_done, cancelled, not_required)",
    ),
    "appointment-date": Extension("date", "ServiceRequest", "The date of the booked appointment"),
}
IDENTIFIER_SYSTEMS: dict[str, IdentifierSystem] = {
    "study-ids": IdentifierSystem(
        "Study ids",
        "A patient's pseudonymous study id (never a name): unique in this installation.",
    ),
    "care-plans": IdentifierSystem(
        "Follow-up care plans",
        "A patient's follow-up calendar as a CarePlan, known by the patient's study id.",
    ),
    "assessments": IdentifierSystem(
        "Follow-up assessments",
        "One required assessment at one time point, as study id:infusion:rule:occurrence; "
        "stable when the calendar is recomputed.",
    ),
}


def structure_definition(base_url: str, extension_id: str) -> dict[str, Any] | None:
    spec = EXTENSIONS.get(extension_id)
    if spec is None:
        return None
    return conformance.structure_definition(base_url, extension_id, spec)


def care_plan_bundle(
    study_id: str,
    patient_status: str,
    calendar: Sequence[Mapping[str, Any]],
    *,
    base_url: str,
) -> dict[str, Any]:
    """The stored calendar of ``study_id``: a transaction Bundle of the CarePlan (first)
    and its ServiceRequests, in due order."""
    base = base_url.rstrip("/")
    requests = [
        _entry(
            "ServiceRequest",
            f"{base}/assessments",
            row["key"],
            _service_request(row, study_id, base),
        )
        for row in calendar
    ]
    plan = _care_plan(study_id, patient_status, calendar, [e["fullUrl"] for e in requests], base)
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_entry("CarePlan", f"{base}/care-plans", study_id, plan), *requests],
    }


def _entry(kind: str, system: str, value: str, resource: dict[str, Any]) -> dict[str, Any]:
    """A conditional update by identifier; the fullUrl a UUID derived from it, so the same
    calendar gives the same Bundle."""
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{system}|{value}')}",
        "resource": resource,
        "request": {
            "method": "PUT",
            "url": f"{kind}?identifier={quote(system, safe='')}%7C{quote(value, safe='')}",
        },
    }


def _care_plan(
    study_id: str,
    patient_status: str,
    calendar: Sequence[Mapping[str, Any]],
    requests: Sequence[str],
    base: str,
) -> dict[str, Any]:
    versions = sorted({(row["protocol"], row["protocol_version"]) for row in calendar})
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "identifier": [{"system": f"{base}/care-plans", "value": study_id}],
        "instantiatesCanonical": [
            f"{plan_definition_url(base, protocol)}|{version}" for protocol, version in versions
        ],
        "status": PLAN_STATUS.get(patient_status, "unknown"),
        "intent": "plan",
        "title": "Long-term follow-up calendar",
        "subject": _subject(study_id, base),
        "activity": [
            _activity(row, request, base) for row, request in zip(calendar, requests, strict=True)
        ],
    }
    return {key: value for key, value in resource.items() if value not in (None, [])}


def _subject(study_id: str, base: str) -> dict[str, Any]:
    """A logical reference by study id: nothing that names the patient."""
    return {
        "type": "Patient",
        "identifier": {"system": f"{base}/study-ids", "value": study_id},
        "display": study_id,
    }


def _activity(row: Mapping[str, Any], request: str, base: str) -> dict[str, Any]:
    # R4 cpl-3: an activity has a reference or a detail, not both.
    activity: dict[str, Any] = {
        "outcomeCodeableConcept": _outcome(row, base),
        "progress": _progress(row),
        "reference": {"type": "ServiceRequest", "reference": request, "display": row["name"]},
    }
    return {key: value for key, value in activity.items() if value not in (None, [])}


def _service_request(row: Mapping[str, Any], study_id: str, base: str) -> dict[str, Any]:
    extensions = [
        {"url": definition_url(base, "plan-action"), "valueString": action_id(row["assessment"])},
        {"url": definition_url(base, "assessment-state"), "valueCode": row["state"]},
    ]
    if row.get("appointment"):
        extensions.append(
            {"url": definition_url(base, "appointment-date"), "valueDate": _iso(row["appointment"])}
        )
    plan = plan_definition_url(base, row["protocol"])
    system = code_system_url(base, assessments_system_id(row["protocol"]))
    notes = [f"Due {_iso(row['due'])} (infusion {row['infusion']}, occurrence {row['occurrence']})"]
    reason = _status_note(row)
    if reason is not None:
        notes.append(reason)
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "extension": extensions,
        "identifier": [{"system": f"{base}/assessments", "value": row["key"]}],
        "instantiatesCanonical": [f"{plan}|{row['protocol_version']}"],
        "status": REQUEST_STATUS.get(row["status"], "revoked"),
        "intent": "plan",
        "category": [_category(row["category"], base)] if row.get("category") else None,
        "code": {
            "coding": [{"system": system, "code": row["assessment"], "display": row["name"]}],
            "text": row["name"],
        },
        "subject": _subject(study_id, base),
        "occurrencePeriod": {"start": _iso(row["window_start"]), "end": _iso(row["window_end"])},
        "reasonCode": [{"text": public_reason(row["reason"])}] if row.get("reason") else None,
        "note": [{"text": text} for text in notes],
    }
    return {key: value for key, value in resource.items() if value not in (None, [])}


def _category(category: str, base: str) -> dict[str, Any]:
    coding = {"system": code_system_url(base, CATEGORY_SYSTEM), "code": category}
    return {"coding": [coding], "text": category}


def _status_note(row: Mapping[str, Any]) -> str | None:
    stored = row["status"]
    if stored == "pending":
        overdue = f"Overdue: the window closed on {_iso(row['window_end'])}"
        return overdue if row["state"] == "overdue" else None
    if stored == "completed":
        return None
    described = STATUS_REASON.get(stored, stored)
    why = row.get("status_reason")
    return f"{described}: {public_reason(why)}" if why else described


def _outcome(row: Mapping[str, Any], base: str) -> list[dict[str, Any]] | None:
    result = row.get("result")
    if row["status"] != "completed" or result in (None, ""):
        return None
    result_type = row.get("result_type") or {}
    if result_type.get("type") == "coded":
        labels = {value["code"]: value["label"] for value in result_type.get("values", ())}
        system_id = results_system_id(row["protocol"], row["assessment"])
        coding = {
            "system": code_system_url(base, system_id),
            "code": result,
            "display": labels.get(result, result),
        }
        return [{"coding": [coding], "text": coding["display"]}]
    unit = result_type.get("unit")
    return [{"text": f"{result} {unit}" if unit else str(result)}]


def _progress(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = []
    if row.get("performed_on"):
        done = row["status"] == "completed"
        text = "Performed" if done else f"Recorded as {row['status'].replace('_', ' ')}"
        notes.append({"time": _iso(row["performed_on"]), "text": text})
    if row.get("note"):
        notes.append({"text": row["note"]})
    return notes


def _iso(value: str | date) -> str:
    return value.isoformat() if isinstance(value, date) else value

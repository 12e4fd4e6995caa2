"""A patient's calendar as a FHIR R4 ``CarePlan`` (intent plan) instantiating the protocol.

Pure: the calendar as the JSON API gives it (``views.calendar_dicts``) in, a JSON-ready
dict out. Pseudonymous like the adverse-event feed: the subject is the study id under
``{base}/study-ids``, never a name or a birth date, and no activity carries the
engine's reason text (a birthday rule's reason names the birth date); the windows are
dates, as in the JSON calendar, for the same roles.

Status of an activity (R4 CarePlan.activity.detail.status):

* pending: ``scheduled`` when an appointment is booked (R4: "Appointment or other booking
  has occurred but activity has not yet begun"), else ``not-started`` ("Care plan
  activity is planned but no action has yet been taken");
  its state on the day (upcoming, due, overdue) is an extension, and overdue is also the
  ``statusReason``;
* completed: ``completed``, the result as ``outcomeCodeableConcept`` (a coded result with
  its code, any other as text) and the date performed and the note as ``progress``;
* missed, not done: ``cancelled`` with the status as ``statusReason``. R4's ``stopped``
  is for an activity ended after it had started; a missed visit never started;
* cancelled, not required: ``cancelled``, the stored reason (e.g. the amendment) as
  ``statusReason``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from surveillance.protocols.fhir_plan import action_id, plan_definition_url

# Patient status -> CarePlan.status: the plan is followed until the patient leaves it.
PLAN_STATUS = {
    "active": "active",
    "lost_to_follow_up": "active",  # the site is still expected to find them
    "completed": "completed",
    "deceased": "revoked",
    "withdrawn": "revoked",
    "transferred": "revoked",
}
STATUS_REASON = {
    "missed": "Missed: the window closed without the assessment",
    "not_done": "Not done",
    "cancelled": "Cancelled",
    "not_required": "Not required",
}


def care_plan(
    study_id: str,
    patient_status: str,
    calendar: Sequence[Mapping[str, Any]],
    *,
    base_url: str,
) -> dict[str, Any]:
    """The stored calendar of ``study_id`` as an R4 CarePlan, activities in due order."""
    base = base_url.rstrip("/")
    versions = sorted({(row["protocol"], row["protocol_version"]) for row in calendar})
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": _resource_id(study_id),
        "identifier": [{"system": f"{base}/care-plans", "value": study_id}],
        "instantiatesCanonical": [
            f"{plan_definition_url(base, protocol)}|{version}" for protocol, version in versions
        ],
        "status": PLAN_STATUS.get(patient_status, "unknown"),
        "intent": "plan",
        "title": "Long-term follow-up calendar",
        "subject": {
            "type": "Patient",
            "identifier": {"system": f"{base}/study-ids", "value": study_id},
            "display": study_id,
        },
        "activity": [_activity(row, base) for row in calendar],
    }
    return {key: value for key, value in resource.items() if value not in (None, [])}


def _activity(row: Mapping[str, Any], base: str) -> dict[str, Any]:
    status, reason = _status(row)
    plan = plan_definition_url(base, row["protocol"])
    detail: dict[str, Any] = {
        "extension": [
            {"url": _definition(base, "assessment-key"), "valueString": row["key"]},
            {"url": _definition(base, "plan-action"), "valueString": action_id(row["assessment"])},
            {"url": _definition(base, "assessment-state"), "valueCode": row["state"]},
        ],
        "kind": "ServiceRequest",
        "instantiatesCanonical": [f"{plan}|{row['protocol_version']}"],
        "code": {
            "coding": [
                {
                    "system": _code_system(base, f"{row['protocol']}-assessments"),
                    "code": row["assessment"],
                    "display": row["name"],
                }
            ],
            "text": row["name"],
        },
        "status": status,
        "statusReason": None if reason is None else {"text": reason},
        "scheduledPeriod": {
            "start": _iso(row["window_start"]),
            "end": _iso(row["window_end"]),
        },
        "description": f"{row['name']}: infusion {row['infusion']}, occurrence "
        f"{row['occurrence']}, due {_iso(row['due'])}",
    }
    if row.get("appointment"):
        detail["extension"].append(
            {"url": _definition(base, "appointment-date"), "valueDate": _iso(row["appointment"])}
        )
    activity: dict[str, Any] = {
        "outcomeCodeableConcept": _outcome(row, base),
        "progress": _progress(row),
        "detail": {key: value for key, value in detail.items() if value is not None},
    }
    return {key: value for key, value in activity.items() if value not in (None, [])}


def _status(row: Mapping[str, Any]) -> tuple[str, str | None]:
    stored = row["status"]
    if stored == "pending":
        status = "scheduled" if row.get("appointment") else "not-started"
        reason = f"Overdue: the window closed on {_iso(row['window_end'])}"
        return status, reason if row["state"] == "overdue" else None
    if stored == "completed":
        return "completed", None
    described = STATUS_REASON.get(stored, stored)
    why = row.get("status_reason")
    return "cancelled", f"{described}: {why}" if why else described


def _outcome(row: Mapping[str, Any], base: str) -> list[dict[str, Any]] | None:
    result = row.get("result")
    if row["status"] != "completed" or result in (None, ""):
        return None
    result_type = row.get("result_type") or {}
    if result_type.get("type") == "coded":
        labels = {value["code"]: value["label"] for value in result_type.get("values", ())}
        coding = {
            "system": _code_system(base, f"{row['protocol']}-{row['assessment']}-result"),
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


def _resource_id(value: str) -> str:
    cleaned = "".join(c if (c.isascii() and c.isalnum()) or c in "-." else "-" for c in value)
    return cleaned[:64]


def _definition(base: str, name: str) -> str:
    return f"{base}/fhir/StructureDefinition/{name}"


def _code_system(base: str, name: str) -> str:
    return f"{base}/fhir/CodeSystem/{name}"


def _iso(value: str | date) -> str:
    return value.isoformat() if isinstance(value, date) else value

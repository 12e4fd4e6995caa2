"""A patient's audit trail as the pages show it: what was done, what changed, and why.

The trail keeps what the services wrote: an action name (``record_outcome``), the old and
new values by field name (JSON), a reason. English shows them as stored (underscores read
as spaces); Italian and German read each action and field in their own words, the stored
words of the code (a status, a yes/no, an event, a case's category) by their labels, dates
as the page writes them, and the services' sentences through ``kit.status_reasons``. What
a person typed (a note, a result, a reason) stays as typed.

Each line is written when the page is rendered (``i18n.Later``): the route builds the rows
before the page's language is in force.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from surveillance.http.web.ae_views import CASE_FIELDS
from surveillance.http.web.render import (
    ASSESSMENT_STATUS_LABELS,
    SEX_LABELS,
)
from surveillance.kit import i18n, reasons, status_reasons
from surveillance.kit.audit import AuditEntry
from surveillance.kit.i18n import N_, Later, gettext
from surveillance.kit.status_reasons import PATIENT_STATUS_LABELS

# The actions of a patient's trail; English: the stored name with spaces.
ACTIONS = {
    "enroll": N_("enroll"),
    "add_infusion": N_("add infusion"),
    "calendar_change": N_("calendar change"),
    "change_status": N_("change status"),
    "record_event": N_("record event"),
    "record_outcome": N_("record outcome"),
    "correct_outcome": N_("correct outcome"),
    "undo_outcome": N_("undo outcome"),
    "reschedule": N_("reschedule"),
    "flag_result": N_("flag result"),
    "result_to_note": N_("result to note"),
    "mark_started_by_corrected_result": N_("mark started by corrected result"),
    "protocol_move": N_("protocol move"),
    "acknowledge_escalation": N_("acknowledge escalation"),
    "adverse_event_created": N_("adverse event created"),
    "adverse_event_updated": N_("adverse event updated"),
    "adverse_event_nullified": N_("adverse event nullified"),
    "permission_denied": N_("permission denied"),
}
# The fields the services write old and new values of (a case's: ``CASE_FIELDS``).
FIELDS = {
    "status": N_("status"),
    "performed_on": N_("performed on"),
    "result": N_("result"),
    "note": N_("note"),
    "result_as_entered": N_("result as entered"),
    "status_reason": N_("status reason"),
    "protocol_deviation": N_("protocol deviation"),
    "number": N_("number"),
    "infused_on": N_("infused on"),
    "event": N_("event"),
    "on": N_("on"),
    "status_on": N_("status on"),
    "site": N_("site"),
    "summary": N_("summary"),
    "added": N_("added"),
    "moved": N_("moved"),
    "cancelled": N_("cancelled"),
    "reinstated": N_("reinstated"),
    "protocol_version": N_("protocol version"),
    "not_required": N_("not required"),
    "appointment_on": N_("appointment on"),
    "birth_date": N_("birth date"),
    "sex": N_("sex"),
    "diagnosis": N_("diagnosis"),
    "protocol": N_("protocol"),
    "infusion_date": N_("infusion date"),
    "assessments_planned": N_("assessments planned"),
    "level": N_("level"),
    "case_id": N_("case id"),
    "version": N_("version"),
    "nullify_reason": N_("nullify reason"),
    "recorded_at": N_("recorded at"),
}
_CASE_STATUSES = {"open": N_("open"), "nullified": N_("nullified")}
# A calendar change's counts (``CalendarChange.summary``).
_COUNTS = {
    "added": N_("%(n)s added"),
    "moved": N_("%(n)s moved"),
    "cancelled": N_("%(n)s cancelled"),
    "reinstated": N_("%(n)s reinstated"),
    "relabelled": N_("%(n)s relabelled"),
}
_SUMMARY = re.compile(
    r"^(?P<added>\d+) added, (?P<moved>\d+) moved, (?P<cancelled>\d+) cancelled, "
    r"(?P<reinstated>\d+) reinstated, (?P<relabelled>\d+) relabelled$"
)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LIMIT = 160


@dataclass(frozen=True)
class AuditRow:
    entry: AuditEntry
    what: Later  # the action
    changes: list[Later]  # "field: old → new", one per value set
    why: Later  # the reason


def audit_row(entry: AuditEntry) -> AuditRow:
    return AuditRow(
        entry,
        Later(lambda: action_label(entry.action)),
        [Later(_line_writer(entry, *change)) for change in changes_of(entry)],
        Later(lambda: status_reasons.localized(entry.reason)),
    )


def action_label(action: str) -> str:
    words = ACTIONS.get(action)
    return gettext(words) if words else action.replace("_", " ")


def changes_of(entry: AuditEntry) -> list[tuple[str, bool, Any, Any]]:
    """(field, had an old value, old, new) for each value the change set."""
    old, new = _load(entry.old_values), _load(entry.new_values)
    found = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if name in old and before == after:
            continue
        found.append((name, name in old, before, after))
    return found


def _line_writer(
    entry: AuditEntry, name: str, had: bool, before: Any, after: Any
) -> Callable[[], str]:
    def write() -> str:
        field = _field(entry, name)
        if had:
            return f"{field}: {_value(entry, name, before)} → {_value(entry, name, after)}"
        return f"{field}: {_value(entry, name, after)}"

    return write


def _english() -> bool:
    return i18n.current_locale() == i18n.DEFAULT_LOCALE


def _field(entry: AuditEntry, name: str) -> str:
    if entry.entity == "adverse_event" and name in CASE_FIELDS and not _english():
        return gettext(CASE_FIELDS[name][0])
    words = FIELDS.get(name)
    return gettext(words) if words else name  # an assessment key (a mark's row)


def _value(entry: AuditEntry, name: str, value: Any) -> str:
    """As stored in English (JSON for lists); read in the page's words otherwise."""
    if value is None or value == "None":  # a status change writes no date as "None"
        return "—"
    if _english():
        return _short(value)
    if name == "summary" and isinstance(value, str):
        return _short(_summary(value))
    if name in ("added", "moved", "cancelled", "reinstated") and isinstance(value, list):
        return _short(", ".join(_calendar_item(item) for item in value) or "—")
    if name == "not_required" and isinstance(value, list):
        return _short(", ".join(str(key) for key in value) or "—")
    if entry.action == "mark_started_by_corrected_result" or name == "status_reason":
        return _short(status_reasons.localized(str(value)))
    if entry.entity == "adverse_event" and name in CASE_FIELDS:
        return _short(str(CASE_FIELDS[name][1](value)))
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, str):
        return _short(_word(entry, name, value))
    return _short(value)


def _word(entry: AuditEntry, name: str, value: str) -> str:
    """A stored word of the code by its label; a date as the page writes it."""
    labels: dict[str, str] = {}
    if name == "status":
        labels = {
            "assessment": ASSESSMENT_STATUS_LABELS,
            "patient": PATIENT_STATUS_LABELS,
            "adverse_event": _CASE_STATUSES,
        }.get(entry.entity, {})
    elif name == "sex":
        labels = SEX_LABELS
    elif name == "event":
        labels = {kind.replace(" ", "_"): words for kind, words in reasons.EVENT_WORDS.items()}
    if value in labels:
        return gettext(labels[value])
    if _DAY.match(value):
        try:
            return i18n.format_day(date.fromisoformat(value))
        except ValueError:
            return value
    return value


def _summary(text: str) -> str:
    """A calendar change's counts: "1 added, 0 moved, ..." in the page's words."""
    counts = _SUMMARY.match(text)
    if counts is None:
        return text
    return ", ".join(gettext(_COUNTS[kind]) % {"n": n} for kind, n in counts.groupdict().items())


def _calendar_item(item: Any) -> str:
    """One row of a calendar change: its key and date(s); JSON if it is another shape."""
    if not isinstance(item, dict) or "key" not in item:
        return json.dumps(item)
    if "from" in item and "to" in item:
        return f"{item['key']} ({_day(item['from'])} → {_day(item['to'])})"
    return f"{item['key']} ({_day(item.get('due'))})"


def _day(value: Any) -> str:
    try:
        return i18n.format_day(date.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def _load(values: str | None) -> dict[str, Any]:
    if not values:
        return {}
    loaded = json.loads(values)
    return loaded if isinstance(loaded, dict) else {"value": loaded}


def _short(value: Any, limit: int = _LIMIT) -> str:
    text = "—" if value is None else value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

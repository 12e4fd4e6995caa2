"""The enrolment, re-infusion and status forms: what was typed, read for the services, and
kept to show the form again as typed (the error beside its field, or a preview)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import rules
from surveillance.calendar.sync import CalendarChange
from surveillance.errors import InvalidInput
from surveillance.kit.i18n import N_, Later
from surveillance.kit.sqltypes import MAX_INTEGER
from surveillance.protocols.registry import assessment_name

# What a status change means, in the words on the form (the API's values as keys).
STATUS_CHOICES = {
    "deceased": N_("Deceased"),
    "withdrawn": N_("Withdrawn (consent withdrawn)"),
    "lost_to_follow_up": N_("Lost to follow-up"),
    "transferred": N_("Transferred to another site"),
    "active": N_("Active again"),
}
ONLY_INVESTIGATORS = N_("Only investigators can change a patient's status.")
PREVIEW_ROWS = 12  # the first assessments an enrolment preview lists


@dataclass(frozen=True)
class FormEntry:
    """One form as posted; ``error`` and ``field`` as the ``_macros.html`` helpers read them."""

    values: dict[str, str] = field(default_factory=dict)
    error: str | Later | None = None
    field: str | None = None  # the input the error is about; None: the whole form


@dataclass(frozen=True)
class ChangeLine:
    kind: str  # added, moved, cancelled, reinstated
    name: str
    due: date
    was: date | None = None  # moved: the date it had


@dataclass(frozen=True)
class CalendarPreview:
    """An enrolment's calendar, summed up: how many, by category and state, the first few."""

    total: int
    by_category: list[tuple[str, int]]
    by_state: dict[str, int]
    first: list[dict[str, Any]]


def form_day(value: str, name: str, label: str) -> date:
    """A YYYY-MM-DD field; a missing or unreadable one is an error beside that field."""
    if not value.strip():
        raise InvalidInput(f"give the {label} (YYYY-MM-DD)", field=name)
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not a date; use YYYY-MM-DD", field=name) from exc


def form_version(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_INTEGER)):
        raise InvalidInput("the form lost the patient's version; reload the page and try again")
    return int(value)


def calendar_preview(calendar: list[dict[str, Any]]) -> CalendarPreview:
    categories = Counter(row["category"] for row in calendar)
    return CalendarPreview(
        total=len(calendar),
        by_category=sorted(categories.items()),
        by_state=dict(Counter(row["state"] for row in calendar)),
        first=calendar[:PREVIEW_ROWS],
    )


def change_lines(
    change: CalendarChange, registry: rules.ProtocolRegistry, protocol_id: str
) -> list[ChangeLine]:
    """Each assessment a calendar change adds, moves, cancels or brings back, by date."""
    lines = [ChangeLine("added", p.name, p.due) for p in change.added]
    lines += [ChangeLine("moved", p.name, p.due, s.due_on) for s, p in change.moved]
    lines += [ChangeLine("reinstated", p.name, p.due) for _, p in change.reinstated]
    lines += [
        ChangeLine(
            "cancelled",
            assessment_name(registry, protocol_id, s.protocol_version, s.assessment),
            s.due_on,
        )
        for s in change.cancelled
    ]
    return sorted(lines, key=lambda line: (line.due, line.kind, line.name))


def sentence(text: str) -> str:
    """A service message ("ROM-1: infusion date ...") as the start of a sentence."""
    return f"{text[:1].upper()}{text[1:]}"

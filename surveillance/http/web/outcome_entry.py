"""What a nurse typed in an outcome or correction form, read for the services, and kept to
show the form again as typed (with the error beside its field, or what saving would do)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from surveillance.errors import InvalidInput
from surveillance.kit.sqltypes import MAX_INTEGER

OUTCOMES = {"completed": "Completed", "missed": "Missed", "not_done": "Not done"}


@dataclass(frozen=True)
class OutcomeEntry:
    """One form as posted, and what the server answers about it without saving."""

    key: str
    values: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    field: str | None = None  # the input the error is about; None: the whole form
    effects: Any = None  # what saving would start, stop or move (a preview)
    early: date | None = None  # the window opens then: completing it now needs a yes


def typed_result(value: str, unit: str) -> str | None:
    """The result field and, for a quantity, the unit chosen beside it ("3.5" + "g/L")."""
    value = value.strip()
    return f"{value} {unit.strip()}" if value and unit.strip() else value or None


def form_version(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_INTEGER)):
        raise InvalidInput("the form lost the record's version; reload the page and try again")
    return int(value)


def done_on(value: str, *, today: date, quick: bool = False) -> date:
    """The date typed in the form. Only the one-click "Completed today" means today: an
    empty date is a question left unanswered, not today."""
    if quick:
        return today
    if not value.strip():
        raise InvalidInput("give the date it was done (YYYY-MM-DD)", field="on")
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not a date; use YYYY-MM-DD", field="on") from exc

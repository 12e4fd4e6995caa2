"""The adverse-event form: what it posts, its starting values, and turning it into facts.

The same form records a new case and a follow-up. Everything arrives as text and is kept
as typed, so a refused form comes back with the nurse's entries and the reasons beside
the fields; the clinical checks themselves stay in ``adverse_events.facts``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from surveillance.accounts.auth import Principal
from surveillance.adverse_events.facts import CaseFacts
from surveillance.errors import InvalidInput
from surveillance.http.web.ae_labels import FIELD_LABELS
from surveillance.kit.i18n import gettext
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    ReporterQualification,
    Seriousness,
    default_reporter,
)

CHECKED = "yes"
_E = TypeVar("_E", Category, Relatedness, CaseOutcome, GradeScale, Seriousness)
# The service joins its problems with "; " and starts each with the field's name.
_PROBLEM = re.compile(r"; (?=[a-z_]+: )")
_NAMED = re.compile(r"^([a-z_]+): (.*)$", re.DOTALL)


class AeFormData(BaseModel):
    """What the form posts: text as typed (an unticked checkbox is simply absent)."""

    model_config = ConfigDict(extra="ignore")

    csrf_token: str = ""
    version: str = ""  # the case version the follow-up was made against (If-Match)
    onset_date: str = ""
    end_date: str = ""
    awareness_date: str = ""
    last_info_date: str = ""
    term: str = ""
    meddra_code: str = ""
    meddra_version: str = ""
    category: str = ""
    grade: str = ""
    grade_scale: str = ""
    serious: str = ""
    seriousness_criteria: list[str] = []
    relatedness: str = ""
    expected: str = ""
    outcome: str = ""
    narrative: str = ""


@dataclass(frozen=True)
class FormErrors:
    """The service's message split per field, to show each problem beside its field."""

    by_field: dict[str, list[str]] = field(default_factory=dict)
    other: list[str] = field(default_factory=list)

    def summary(self) -> list[tuple[str, str]]:
        """(field name or "", "Label: problem") in the form's order, for the summary box."""
        named = [
            (name, f"{gettext(FIELD_LABELS[name])}: {text}")
            for name in FIELD_LABELS
            for text in self.by_field.get(name, [])
        ]
        return named + [("", text) for text in self.other]


def form_errors(message: str) -> FormErrors:
    by_field: dict[str, list[str]] = {}
    other: list[str] = []
    for problem in _PROBLEM.split(message):
        found = _NAMED.match(problem)
        if found and found.group(1) in FIELD_LABELS:
            by_field.setdefault(found.group(1), []).append(found.group(2))
        else:
            other.append(problem)
    return FormErrors(by_field, other)


def blank_form(today: date) -> AeFormData:
    """A new case's defaults: learned of today, ongoing, not assessed, CTCAE, unexpected."""
    return AeFormData(
        awareness_date=today.isoformat(),
        grade_scale=GradeScale.ctcae_v5.value,
        relatedness=Relatedness.not_assessed.value,
        outcome=CaseOutcome.not_recovered.value,
    )


def form_of(facts: CaseFacts, version: int, today: date) -> AeFormData:
    """A follow-up form: the latest version as it stands, new information dated today."""
    return AeFormData(
        version=str(version),
        onset_date=facts.onset_date.isoformat(),
        end_date=facts.end_date.isoformat() if facts.end_date else "",
        awareness_date=facts.awareness_date.isoformat(),
        last_info_date=today.isoformat(),
        term=facts.term,
        meddra_code=facts.meddra_code or "",
        meddra_version=facts.meddra_version or "",
        category=facts.category.value,
        grade=str(facts.grade) if facts.grade is not None else "",
        grade_scale=(facts.grade_scale or GradeScale.ctcae_v5).value,
        serious=CHECKED if facts.serious else "",
        seriousness_criteria=[c.value for c in facts.seriousness_criteria],
        relatedness=facts.relatedness.value,
        expected=CHECKED if facts.expected else "",
        outcome=facts.outcome.value,
        narrative=facts.narrative or "",
    )


def reporter_of(principal: Principal) -> ReporterQualification:
    """As the API does (``default_reporter``)."""
    return default_reporter(principal.role.value)


def to_facts(data: AeFormData, reporter: ReporterQualification) -> CaseFacts:
    """The form as facts; ``InvalidInput`` naming every field that cannot be read."""
    problems: list[str] = []
    onset = _date(data.onset_date, "onset_date", problems, required=True)
    awareness = _date(data.awareness_date, "awareness_date", problems, required=True)
    end = _date(data.end_date, "end_date", problems)
    last_info = _date(data.last_info_date, "last_info_date", problems)
    category = _choice(Category, data.category, "category", problems)
    relatedness = _choice(Relatedness, data.relatedness, "relatedness", problems)
    outcome = _choice(CaseOutcome, data.outcome, "outcome", problems)
    grade = _grade(data.grade, problems)
    # The scale select always sends a value; it only means something with a grade.
    scale = _choice(GradeScale, data.grade_scale, "grade_scale", problems) if grade else None
    criteria = []
    for value in data.seriousness_criteria:
        criterion = _choice(Seriousness, value, "seriousness_criteria", problems)
        if criterion is not None:
            criteria.append(criterion)
    if problems:
        raise InvalidInput("; ".join(problems))
    assert onset is not None
    assert awareness is not None
    assert category is not None
    assert relatedness is not None
    assert outcome is not None
    return CaseFacts(
        onset_date=onset,
        awareness_date=awareness,
        term=data.term,
        category=category,
        serious=data.serious == CHECKED,
        relatedness=relatedness,
        expected=data.expected == CHECKED,
        outcome=outcome,
        end_date=end,
        meddra_code=data.meddra_code.strip() or None,
        meddra_version=data.meddra_version.strip() or None,
        grade=grade,
        grade_scale=scale,
        seriousness_criteria=tuple(criteria),
        narrative=data.narrative.strip() or None,
        reporter_qualification=reporter,
        last_info_date=last_info,
    )


def _date(value: str, name: str, problems: list[str], *, required: bool = False) -> date | None:
    text = value.strip()
    if not text:
        if required:
            problems.append(f"{name}: give the date (YYYY-MM-DD)")
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(f"{name}: {text!r} is not a date (YYYY-MM-DD)")
        return None


def _choice(kind: type[_E], value: str, name: str, problems: list[str]) -> _E | None:
    try:
        return kind(value)
    except ValueError:
        problems.append(
            f"{name}: {value!r} is not one of the options" if value else f"{name}: choose one"
        )
        return None


def _grade(value: str, problems: list[str]) -> int | None:
    if not value:
        return None
    if value not in ("1", "2", "3", "4", "5"):
        problems.append(f"grade: {value!r} is not a grade (1 to 5)")
        return None
    return int(value)

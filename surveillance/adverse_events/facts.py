"""What a reporter says about a case, and the checks it must pass before it is stored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date

from surveillance.errors import InvalidInput
from surveillance.kit.bounds import EARLIEST_DAY
from surveillance.kit.text import optional_multi_line, optional_single_line, single_line
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    ReporterQualification,
    Seriousness,
)

_MEDDRA_CODE = re.compile(r"^\d{8}$")
_MEDDRA_VERSION = re.compile(r"^\d{1,2}\.\d$")
ASTCT_CATEGORIES = frozenset({Category.crs, Category.icans})
MAX_NARRATIVE = 20_000


@dataclass(frozen=True)
class CaseFacts:
    """One version's content, as entered (API body, web form, or the system itself)."""

    onset_date: date
    awareness_date: date
    term: str
    category: Category
    serious: bool
    relatedness: Relatedness
    expected: bool
    outcome: CaseOutcome
    end_date: date | None = None
    meddra_code: str | None = None
    meddra_version: str | None = None
    grade: int | None = None
    grade_scale: GradeScale | None = None
    seriousness_criteria: tuple[Seriousness, ...] = field(default=())
    narrative: str | None = None
    reporter_qualification: ReporterQualification = ReporterQualification.physician
    last_info_date: date | None = None  # default: today at the site

    @property
    def fatal(self) -> bool:
        return self.outcome is CaseOutcome.fatal

    @property
    def death_date(self) -> date:
        """The date of death of a fatal case: its end, or its onset if no end is given."""
        return self.end_date or self.onset_date


def check(facts: CaseFacts, *, birth_date: date, today: date) -> CaseFacts:
    """Refuse what cannot be true; return the facts with defaults filled in."""
    check_text(facts)
    problems: list[str] = []
    term = facts.term.strip()
    if not term:
        problems.append("term: give the verbatim term, e.g. 'Cytokine release syndrome'")
    elif len(term) > 250:
        problems.append("term: at most 250 characters (put the detail in the narrative)")
    problems += _dates(facts, birth_date=birth_date, today=today)
    problems += _coding(facts)
    problems += _grade(facts)
    problems += _seriousness(facts)
    if facts.narrative is not None and len(facts.narrative) > MAX_NARRATIVE:
        problems.append(f"narrative: at most {MAX_NARRATIVE} characters")
    if problems:
        raise InvalidInput("; ".join(problems))
    return replace(
        facts,
        term=term,
        seriousness_criteria=tuple(dict.fromkeys(facts.seriousness_criteria)),
        last_info_date=facts.last_info_date or today,
    )


def check_text(facts: CaseFacts) -> None:
    """The term and codes are one line (they go into alert subjects and safety systems'
    fields), the narrative may hold line breaks and tabs; no other control character."""
    single_line(facts.term, "term")
    optional_single_line(facts.meddra_code, "meddra_code")
    optional_single_line(facts.meddra_version, "meddra_version")
    optional_multi_line(facts.narrative, "narrative")


def is_pre_existing(facts: CaseFacts, first_infusion: date) -> bool:
    """Onset before the first infusion: recorded, but flagged as pre-existing."""
    return facts.onset_date < first_infusion


def _dates(facts: CaseFacts, *, birth_date: date, today: date) -> list[str]:
    problems = []
    named = {
        "onset_date": facts.onset_date,
        "awareness_date": facts.awareness_date,
        "end_date": facts.end_date,
        "last_info_date": facts.last_info_date,
    }
    for name, day in named.items():
        if day is not None and day < EARLIEST_DAY:
            problems.append(f"{name}: {day} is before {EARLIEST_DAY}")
        if day is not None and day > today:
            problems.append(f"{name}: {day} is in the future (today at the site is {today})")
    if facts.onset_date < birth_date:
        problems.append(f"onset_date: {facts.onset_date} is before the patient was born")
    if facts.end_date is not None and facts.end_date < facts.onset_date:
        problems.append(f"end_date: {facts.end_date} is before the onset on {facts.onset_date}")
    if facts.awareness_date < facts.onset_date:
        problems.append(
            f"awareness_date: {facts.awareness_date} is before the onset on "
            f"{facts.onset_date}; the site cannot learn of an event before it starts"
        )
    if facts.last_info_date is not None and facts.last_info_date < facts.awareness_date:
        problems.append(
            f"last_info_date: {facts.last_info_date} is before the awareness date "
            f"{facts.awareness_date}"
        )
    return problems


def _coding(facts: CaseFacts) -> list[str]:
    problems = []
    if facts.meddra_code is not None and not _MEDDRA_CODE.match(facts.meddra_code):
        problems.append(f"meddra_code: {facts.meddra_code!r} is not an 8-digit MedDRA code")
    if facts.meddra_code is not None and facts.meddra_version is None:
        problems.append("meddra_version: required with a MedDRA code, e.g. '27.1'")
    if facts.meddra_version is not None and not _MEDDRA_VERSION.match(facts.meddra_version):
        problems.append(f"meddra_version: {facts.meddra_version!r} is not like '27.1'")
    return problems


def _grade(facts: CaseFacts) -> list[str]:
    problems = []
    if facts.grade is None:
        if facts.grade_scale is not None:
            problems.append("grade: a grade scale was given without a grade")
        return problems
    if not 1 <= facts.grade <= 5:
        problems.append(f"grade: {facts.grade} is not a grade (1 to 5)")
    if facts.grade_scale is None:
        problems.append("grade_scale: say which scale the grade is on (ctcae_v5 or astct)")
    if facts.grade_scale is GradeScale.astct:
        if facts.category not in ASTCT_CATEGORIES:
            problems.append("grade_scale: ASTCT grades CRS and ICANS only; use ctcae_v5")
        elif facts.grade == 5:
            problems.append("grade: ASTCT grades 1 to 4; a death is grade 5 on ctcae_v5")
    if facts.grade == 5 and not facts.fatal:
        problems.append("outcome: grade 5 means death, so the outcome must be 'fatal'")
    return problems


def _seriousness(facts: CaseFacts) -> list[str]:
    problems = []
    criteria = set(facts.seriousness_criteria)
    if facts.serious and not criteria:
        problems.append("seriousness_criteria: a serious case needs at least one criterion")
    if not facts.serious and criteria:
        problems.append("serious: seriousness criteria were given, so the case is serious")
    if facts.fatal and Seriousness.death not in criteria:
        problems.append("seriousness_criteria: a fatal outcome needs the criterion 'death'")
    if Seriousness.death in criteria and not facts.fatal:
        problems.append("outcome: the criterion 'death' needs the outcome 'fatal'")
    return problems

"""What the adverse-event pages show, shaped for the templates.

The versions side by side (one column per version, a row per field, changes marked) and
the dashboard's serious cases (who has acknowledged the latest version, which reporting
deadlines are still open).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import Request
from sqlmodel import Session

from surveillance.accounts.auth import Principal
from surveillance.adverse_events.acks import SeriousCaseAcks, serious_case_acks
from surveillance.adverse_events.cases import get_case
from surveillance.adverse_events.deadlines import deadlines_of
from surveillance.alerting.policy import policy_for
from surveillance.errors import NotFound
from surveillance.http.app_settings import policy_overrides, settings_of
from surveillance.http.web.ae_labels import (
    CATEGORIES,
    GRADE_SCALES,
    OUTCOMES,
    RELATEDNESS,
    REPORTERS,
    SERIOUSNESS,
    label,
)
from surveillance.http.web.render import app_state
from surveillance.kit.i18n import N_, Later, format_day, gettext
from surveillance.records.adverse_events import AdverseEventCase
from surveillance.records.patients import Site
from surveillance.records.queries import study_ids_of

SERIOUS_PER_SITE = 20


def visible_case(session: Session, principal: Principal, case_id: str) -> AdverseEventCase:
    """The case if it is at one of the user's sites; another site's is reported missing."""
    missing = NotFound(f"There is no adverse event {case_id!r} at your sites.")
    try:
        case = get_case(session, case_id)
    except NotFound:
        raise missing from None
    if not principal.works_at(case.site_id):
        raise missing
    return case


# -- the versions side by side -----------------------------------------------------------


@dataclass(frozen=True)
class VersionColumn:
    version: int
    change: str  # created, updated, nullified
    recorded_at: str
    recorded_by: str
    nullify_reason: str | None


@dataclass(frozen=True)
class Cell:
    text: str | Later
    changed: bool  # differs from the version before


@dataclass(frozen=True)
class FieldRow:
    name: str
    label: str
    cells: list[Cell]


def _yes_no(value: Any) -> str:
    return gettext("Yes") if value else gettext("No")


def _criteria(value: Any) -> str:
    return ", ".join(label(SERIOUSNESS, c) for c in value) if value else "—"


def _text(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)


def _day(value: Any) -> str:
    """A date of the case in words (``20 nov 2026``); the feed's values are ISO text."""
    return format_day(value)


# The rows, in the order a reader checks a case; each with how its value reads.
_FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("term", N_("What happened"), _text),
    ("category", N_("Category"), lambda v: label(CATEGORIES, v)),
    ("grade", N_("Grade"), _text),
    ("grade_scale", N_("Grading scale"), lambda v: label(GRADE_SCALES, v)),
    ("serious", N_("Serious"), _yes_no),
    ("seriousness_criteria", N_("Why it is serious"), _criteria),
    ("relatedness", N_("Related to the therapy?"), lambda v: label(RELATEDNESS, v)),
    ("expected", N_("Expected"), lambda v: gettext("Expected") if v else gettext("Unexpected")),
    ("outcome", N_("Outcome"), lambda v: label(OUTCOMES, v)),
    ("onset_date", N_("Onset"), _day),
    ("end_date", N_("End"), _day),
    ("awareness_date", N_("Site learned of it"), _day),
    ("last_info_date", N_("Date of the information"), _day),
    ("meddra_code", N_("MedDRA code"), _text),
    ("meddra_version", N_("MedDRA version"), _text),
    ("narrative", N_("Narrative"), _text),
    ("pre_existing", N_("Began before the infusion"), _yes_no),
    ("reporter_qualification", N_("Reported by"), lambda v: label(REPORTERS, v)),
    ("source", N_("Started by"), _text),
)
# A field of a case by its stored name: its title and how its value reads (the audit trail).
CASE_FIELDS: dict[str, tuple[str, Any]] = {name: (title, show) for name, title, show in _FIELDS}


def side_by_side(
    versions: list[dict[str, Any]], recorded_by: dict[int, str]
) -> tuple[list[VersionColumn], list[FieldRow]]:
    """``versions`` oldest first (``case_detail``'s); ``recorded_by``: version -> who."""
    columns = [
        VersionColumn(
            version=v["version"],
            change=_change(v, i),
            recorded_at=v["recorded_at"][:16].replace("T", " "),
            recorded_by=recorded_by.get(v["version"], ""),
            nullify_reason=v["nullify_reason"],
        )
        for i, v in enumerate(versions)
    ]
    rows = []
    for name, title, show in _FIELDS:
        if name == "source" and not any(v.get(name) for v in versions):
            continue  # only cases started by a result have one
        cells = [
            Cell(_later(show, v[name]), i > 0 and v[name] != versions[i - 1][name])
            for i, v in enumerate(versions)
        ]
        rows.append(FieldRow(name, title, cells))
    return columns, rows


def _later(show: Callable[[Any], str], value: Any) -> Later:
    return Later(lambda: show(value))


def _change(version: dict[str, Any], index: int) -> str:
    if version["status"] == "nullified":
        return "nullified"
    return "created" if index == 0 else "updated"


# -- the dashboard's serious cases -------------------------------------------------------


@dataclass(frozen=True)
class SystemAnswer:
    """One safety system's answer to a case's latest version."""

    consumer: str
    status: str | None  # AA, AE, AR; None: no answer yet
    message: str | None
    at: datetime | None
    accepted: bool
    late: bool  # not accepted, and the version is older than the time allowed


@dataclass(frozen=True)
class SeriousCase:
    case: AdverseEventCase
    study_id: str
    recorded_at: datetime
    answers: list[SystemAnswer]
    deadlines: list[dict[str, Any]]  # the pending ones, soonest first


@dataclass
class SeriousPanel:
    within_hours: int  # how long a safety system has to accept a version
    cases: list[SeriousCase] = field(default_factory=list)
    more: int = 0  # open serious cases beyond the ones shown


def dashboard_serious_cases(
    request: Request, session: Session, panels: Iterable[tuple[Site, date]]
) -> dict[str, SeriousPanel]:
    """Per site (id -> panel): its open serious cases, newest change first."""
    state = app_state(request)
    overrides = policy_overrides(settings_of(request.app.state))
    on_by_site = {site.id: on for site, on in panels}
    # The same allowance per site as the alert scan uses.
    found = {
        site_id: SeriousPanel(
            policy_for(overrides, site=site_id, protocol="").acknowledge_within_hours
        )
        for site_id in on_by_site
    }
    if not on_by_site:
        return found
    items = serious_case_acks(session, site_ids=set(on_by_site), limit=10_000)
    study_ids = study_ids_of(session, {item.case.patient_id for item in items})
    now = state.now()
    for item in items:
        site_id = item.case.site_id
        panel = found[site_id]
        if len(panel.cases) >= SERIOUS_PER_SITE:
            panel.more += 1
            continue
        deadlines = deadlines_of(
            session,
            item.case,
            item.version,
            state.registry,
            on=on_by_site[site_id],
        )
        panel.cases.append(
            SeriousCase(
                case=item.case,
                study_id=study_ids.get(item.case.patient_id, "?"),
                recorded_at=item.recorded_at,
                answers=_answers(item, now, timedelta(hours=panel.within_hours)),
                deadlines=[d for d in deadlines if d["status"] == "pending"],
            )
        )
    return found


def _answers(item: SeriousCaseAcks, now: datetime, within: timedelta) -> list[SystemAnswer]:
    old = now - item.recorded_at >= within
    return [
        SystemAnswer(s.consumer, s.status, s.message, s.at, s.accepted, old and not s.accepted)
        for s in item.systems
    ]

"""The engine events a patient's open adverse-event cases stand for.

They are derived from the versions of each case at every re-plan, never stored: a
follow-up that changes seriousness moves the reporting clocks, and a nullified case
takes its clocks and its tumour testing away again (what was already done stays).

Day 0 of a clock is the day the site learned what makes the case qualify: the awareness
date if the first version already did, otherwise the information date of the follow-up
that made it so (a case found serious a week later is not a week overdue at once).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

import rules
from surveillance.records.adverse_event_vocabulary import (
    SUSPECTED,
    CaseStatus,
    Category,
    Relatedness,
    Seriousness,
)
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion

_FATAL_OR_LIFE_THREATENING = {Seriousness.death.value, Seriousness.life_threatening.value}
# Events only a recorded case stands for: entered by hand they would start reporting
# clocks that no case explains (and that a nullification could not take back).
CASE_EVENTS = frozenset(
    {
        "serious_adverse_event",
        "unexpected_fatal_or_life_threatening_reaction",
        "unexpected_serious_reaction",
    }
)


def events_for_case(
    version: AdverseEventVersion, series: int | None = None
) -> list[rules.RecordedEvent]:
    """What one version of a case means for the calendar (day 0 = the site's awareness).

    ``series``: the case's own number for what it starts, so that nullifying another
    case with the same day 0 leaves this one's rows (and what was recorded on them) alone.
    """
    on, source = version.awareness_date, f"adverse event {version.case_id}"
    events = []
    if version.category == Category.malignancy.value and not version.pre_existing:
        events.append(rules.RecordedEvent("new_malignancy", on, source, series))
    if not version.serious:
        return events
    events.append(rules.RecordedEvent("serious_adverse_event", on, source, series))
    suspected = Relatedness(version.relatedness) in SUSPECTED
    if suspected and not version.expected:
        criteria = set(filter(None, version.seriousness_criteria.split(",")))
        kind = (
            "unexpected_fatal_or_life_threatening_reaction"
            if criteria & _FATAL_OR_LIFE_THREATENING
            else "unexpected_serious_reaction"
        )
        events.append(rules.RecordedEvent(kind, on, source, series))
    return events


def events_for_versions(
    versions: list[AdverseEventVersion], series: int | None = None
) -> list[rules.RecordedEvent]:
    """What a case means now (its latest version), each clock started on the day the
    case began to qualify for it without a break up to now."""
    latest = versions[-1]
    kinds_of = [{e.kind for e in events_for_case(v)} for v in versions]
    out = []
    for event in events_for_case(latest, series):
        start = len(versions) - 1
        while start > 0 and event.kind in kinds_of[start - 1]:
            start -= 1
        began = versions[start]
        on = latest.awareness_date if began.version == 1 else began.last_info_date
        out.append(rules.RecordedEvent(event.kind, on, event.source, event.series))
    return out


def adverse_event_events(
    session: Session, patient_id: int, protocol: rules.Protocol
) -> list[rules.RecordedEvent]:
    """The events of every open case of a patient that ``protocol`` reacts to."""
    rows = session.execute(
        select(AdverseEventVersion, col(AdverseEventCase.number))
        .join(AdverseEventCase, col(AdverseEventCase.case_id) == col(AdverseEventVersion.case_id))
        .where(
            col(AdverseEventCase.patient_id) == patient_id,
            col(AdverseEventCase.status) == CaseStatus.open.value,
        )
        .order_by(col(AdverseEventVersion.case_id), col(AdverseEventVersion.version))
    ).all()
    by_case: dict[str, list[AdverseEventVersion]] = {}
    numbers: dict[str, int] = {}
    for version, number in rows:
        by_case.setdefault(version.case_id, []).append(version)
        numbers[version.case_id] = number
    return [
        event
        for case_id, versions in by_case.items()
        for event in events_for_versions(versions, series=numbers[case_id] - 1)
        if event.kind in protocol.events
    ]

"""The engine events a patient's open adverse-event cases stand for.

They are derived from the latest version of each case at every re-plan, never stored:
a follow-up that changes seriousness moves the reporting clocks, and a nullified case
takes its clocks and its tumour testing away again (what was already done stays).
"""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlmodel import Session, col

import rules

from .models import AdverseEventCase, AdverseEventVersion
from .vocabulary import SUSPECTED, CaseStatus, Category, Relatedness, Seriousness

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


def events_for_case(version: AdverseEventVersion) -> list[rules.RecordedEvent]:
    """What one version of a case means for the calendar (day 0 = the site's awareness)."""
    on, source = version.awareness_date, f"adverse event {version.case_id}"
    events = []
    if version.category == Category.malignancy.value and not version.pre_existing:
        events.append(rules.RecordedEvent("new_malignancy", on, source))
    if not version.serious:
        return events
    events.append(rules.RecordedEvent("serious_adverse_event", on, source))
    suspected = Relatedness(version.relatedness) in SUSPECTED
    if suspected and not version.expected:
        criteria = set(filter(None, version.seriousness_criteria.split(",")))
        kind = (
            "unexpected_fatal_or_life_threatening_reaction"
            if criteria & _FATAL_OR_LIFE_THREATENING
            else "unexpected_serious_reaction"
        )
        events.append(rules.RecordedEvent(kind, on, source))
    return events


def adverse_event_events(
    session: Session, patient_id: int, protocol: rules.Protocol
) -> list[rules.RecordedEvent]:
    """The events of every open case of a patient that ``protocol`` reacts to."""
    latest = session.execute(
        select(AdverseEventVersion)
        .join(
            AdverseEventCase,
            and_(
                col(AdverseEventCase.case_id) == col(AdverseEventVersion.case_id),
                col(AdverseEventCase.version) == col(AdverseEventVersion.version),
            ),
        )
        .where(
            col(AdverseEventCase.patient_id) == patient_id,
            col(AdverseEventCase.status) == CaseStatus.open.value,
        )
    ).scalars()
    return [
        event
        for version in latest
        for event in events_for_case(version)
        if event.kind in protocol.events
    ]

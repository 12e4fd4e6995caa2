"""The rules of a case, alone (no database): what validation accepts, and which engine
events a case stands for. Property-based: any case the checks accept is coherent, and
the reporting clocks follow 21 CFR 312.32 for every combination."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import event, given, settings
from hypothesis import strategies as st

from surveillance.adverse_events.facts import CaseFacts, check
from surveillance.adverse_events.views import age_in_years
from surveillance.calendar.case_events import events_for_case, events_for_versions
from surveillance.errors import InvalidInput
from surveillance.records.adverse_event_vocabulary import (
    SUSPECTED,
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    Seriousness,
)
from surveillance.records.adverse_events import AdverseEventVersion

BORN = date(2012, 3, 14)
TODAY = date(2026, 11, 25)


@st.composite
def facts(draw: st.DrawFn) -> CaseFacts:
    """Any case at all half the time; otherwise one coherent in all but its dates."""
    drawn = draw(_any_facts())
    if draw(st.booleans()):
        return drawn
    criteria = drawn.seriousness_criteria if drawn.serious else ()
    if drawn.serious and not criteria:
        criteria = (Seriousness.hospitalization,)
    fatal = Seriousness.death in criteria
    grade = 5 if fatal else draw(st.none() | st.integers(1, 4))
    scale = None if grade is None else GradeScale.ctcae_v5
    return CaseFacts(
        **{
            **drawn.__dict__,
            "term": "Pneumonia",
            "seriousness_criteria": criteria,
            "outcome": CaseOutcome.fatal if fatal else CaseOutcome.recovering,
            "grade": grade,
            "grade_scale": scale,
            "meddra_code": None,
            "meddra_version": None,
            "end_date": draw(st.none() | st.just(drawn.onset_date + timedelta(days=2))),
        }
    )


@st.composite
def _any_facts(draw: st.DrawFn) -> CaseFacts:
    onset = draw(st.dates(date(2010, 1, 1), date(2027, 1, 1)))
    return CaseFacts(
        onset_date=onset,
        awareness_date=onset + timedelta(days=draw(st.integers(-3, 40))),
        end_date=draw(st.none() | st.dates(date(2010, 1, 1), date(2027, 1, 1))),
        term=draw(st.sampled_from(["CRS", " Pneumonia ", "", "x" * 300])),
        category=draw(st.sampled_from(Category)),
        grade=draw(st.none() | st.integers(0, 6)),
        grade_scale=draw(st.none() | st.sampled_from(GradeScale)),
        serious=draw(st.booleans()),
        seriousness_criteria=tuple(draw(st.lists(st.sampled_from(Seriousness), max_size=3))),
        relatedness=draw(st.sampled_from(Relatedness)),
        expected=draw(st.booleans()),
        outcome=draw(st.sampled_from(CaseOutcome)),
        meddra_code=draw(st.none() | st.sampled_from(["10052015", "1005201", "abc"])),
        meddra_version=draw(st.none() | st.sampled_from(["27.1", "27"])),
    )


@settings(max_examples=400)
@given(facts())
def test_whatever_the_checks_accept_is_coherent(case: CaseFacts) -> None:
    try:
        accepted = check(case, birth_date=BORN, today=TODAY)
    except InvalidInput as refused:
        event("refused")
        reason = refused.message  # refused with a reason, never a crash
        assert reason
        return
    event("accepted")
    assert BORN <= accepted.onset_date <= accepted.awareness_date <= TODAY
    assert accepted.end_date is None or accepted.onset_date <= accepted.end_date <= TODAY
    assert accepted.term == accepted.term.strip()
    assert 0 < len(accepted.term) <= 250
    assert accepted.serious == bool(accepted.seriousness_criteria)
    assert (accepted.outcome is CaseOutcome.fatal) == (
        Seriousness.death in accepted.seriousness_criteria
    )
    if accepted.grade == 5:
        assert accepted.outcome is CaseOutcome.fatal
        assert accepted.grade_scale is GradeScale.ctcae_v5
    if accepted.grade_scale is GradeScale.astct:
        assert accepted.category in (Category.crs, Category.icans)
    assert (accepted.grade is None) == (accepted.grade_scale is None)
    assert accepted.last_info_date == TODAY


def _version(case: CaseFacts, pre_existing: bool = False) -> AdverseEventVersion:
    return AdverseEventVersion(
        case_id="ROM-001-AE01",
        version=1,
        sequence=1,
        change="created",
        onset_date=case.onset_date,
        awareness_date=case.awareness_date,
        last_info_date=case.awareness_date,
        term=case.term,
        category=case.category.value,
        serious=case.serious,
        seriousness_criteria=",".join(c.value for c in case.seriousness_criteria),
        relatedness=case.relatedness.value,
        expected=case.expected,
        outcome=case.outcome.value,
        pre_existing=pre_existing,
        reporter_qualification="physician",
        recorded_by="t",
        recorded_at=datetime(2026, 11, 25, tzinfo=UTC),
    )


@given(facts(), st.booleans())
def test_reporting_clocks_follow_the_regulation(case: CaseFacts, pre_existing: bool) -> None:
    kinds = [e.kind for e in events_for_case(_version(case, pre_existing))]
    criteria = set(case.seriousness_criteria)
    suspected_unexpected = case.relatedness in SUSPECTED and not case.expected
    grave = bool(criteria & {Seriousness.death, Seriousness.life_threatening})
    assert ("serious_adverse_event" in kinds) == case.serious
    assert ("unexpected_fatal_or_life_threatening_reaction" in kinds) == (
        case.serious and suspected_unexpected and grave
    )
    assert ("unexpected_serious_reaction" in kinds) == (
        case.serious and suspected_unexpected and not grave
    )
    assert ("new_malignancy" in kinds) == (
        case.category is Category.malignancy and not pre_existing
    )
    events = events_for_case(_version(case, pre_existing))
    assert {e.on for e in events} <= {case.awareness_date}  # day 0 is the awareness
    assert {e.source for e in events} <= {"adverse event ROM-001-AE01"}


@pytest.mark.parametrize("relatedness", [Relatedness.not_related, Relatedness.unlikely_related])
def test_an_unrelated_serious_case_only_notifies_the_sponsor(relatedness: Relatedness) -> None:
    case = CaseFacts(
        onset_date=date(2026, 1, 1),
        awareness_date=date(2026, 1, 2),
        term="Fracture",
        category=Category.other,
        serious=True,
        seriousness_criteria=(Seriousness.hospitalization,),
        relatedness=relatedness,
        expected=False,
        outcome=CaseOutcome.recovering,
    )
    assert [e.kind for e in events_for_case(_version(case))] == ["serious_adverse_event"]


@given(st.dates(date(1990, 1, 1), date(2030, 12, 31)), st.dates(date(1990, 1, 1), date(2045, 1, 1)))
def test_age_in_years_is_relativedeltas_whole_years(born: date, on: date) -> None:
    if on < born:
        return
    assert age_in_years(born, on) == relativedelta(on, born).years


def test_a_leap_day_birthday() -> None:
    born = date(2012, 2, 29)
    assert age_in_years(born, date(2023, 2, 28)) == 10
    assert age_in_years(born, date(2023, 3, 1)) == 11
    assert age_in_years(born, date(2024, 2, 29)) == 12


def test_a_clock_starts_when_the_case_began_to_qualify_without_a_break() -> None:
    serious = CaseFacts(
        onset_date=date(2026, 1, 1),
        awareness_date=date(2026, 1, 2),
        term="Sepsis",
        category=Category.infection,
        serious=True,
        seriousness_criteria=(Seriousness.hospitalization,),
        relatedness=Relatedness.not_related,
        expected=True,
        outcome=CaseOutcome.recovering,
    )
    mild = CaseFacts(**{**serious.__dict__, "serious": False, "seriousness_criteria": ()})

    def versions(*states: tuple[CaseFacts, date]) -> list[AdverseEventVersion]:
        out = []
        for number, (facts, learned) in enumerate(states, start=1):
            version = _version(facts)
            version.version, version.last_info_date = number, learned
            out.append(version)
        return out

    def started(*states: tuple[CaseFacts, date]) -> list[date]:
        return [e.on for e in events_for_versions(versions(*states))]

    assert started((serious, date(2026, 1, 5))) == [date(2026, 1, 2)]  # the awareness
    assert started((mild, date(2026, 1, 2)), (serious, date(2026, 1, 9))) == [date(2026, 1, 9)]
    assert started(
        (serious, date(2026, 1, 2)), (serious, date(2026, 1, 4)), (serious, date(2026, 1, 9))
    ) == [date(2026, 1, 2)]
    assert started(
        (serious, date(2026, 1, 2)), (mild, date(2026, 1, 4)), (serious, date(2026, 1, 9))
    ) == [date(2026, 1, 9)]
    assert started((serious, date(2026, 1, 2)), (mild, date(2026, 1, 4))) == []

"""Properties of ``build_calendar`` over random children, infusions, events and results.

Infusions fall in 2000-2035; children are 2-17 years old at the (first) infusion.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import (
    PatientFacts,
    PlannedAssessment,
    Protocol,
    ProtocolRegistry,
    RecordedEvent,
    RecordedResult,
    build_calendar,
    end_of_follow_up,
)

REGISTRY = ProtocolRegistry.from_directory()
CAR_T = REGISTRY.get("cd19-car-t-pediatric-autoimmune")
AAV = REGISTRY.get("aav-liver-5-year")
PROTOCOLS = {CAR_T.id: CAR_T, AAV.id: AAV}

RESULT_VALUES = ["negative", "positive", "5", "350"]
FAST = settings(max_examples=100, deadline=None)
SLOW = settings(max_examples=50, deadline=None)


@dataclass(frozen=True)
class Facts:
    protocol_id: str  # not the protocol itself: failure reports stay short
    patient: PatientFacts
    infusions: tuple[date, ...]
    events: tuple[RecordedEvent, ...] = ()
    results: tuple[RecordedResult, ...] = ()

    @property
    def protocol(self) -> Protocol:
        return PROTOCOLS[self.protocol_id]

    def calendar(self) -> list[PlannedAssessment]:
        return build_calendar(
            self.protocol, self.patient, list(self.infusions), self.results, self.events
        )

    @property
    def end(self) -> date:
        return end_of_follow_up(self.protocol, list(self.infusions))


@st.composite
def children(draw: st.DrawFn, infusion: date) -> PatientFacts:
    """A child 2-17 years old on the infusion day, with any of the protocol's diagnoses."""
    oldest = infusion - relativedelta(years=18) + timedelta(days=1)  # 17 on the day
    youngest = infusion - relativedelta(years=2)
    birth = draw(st.dates(oldest, youngest))
    return PatientFacts(birth, draw(st.sampled_from(sorted(CAR_T.spec.diagnoses))))


@st.composite
def car_t_facts(draw: st.DrawFn, *, reinfusion: bool = True, with_events: bool = True) -> Facts:
    first = draw(st.dates(date(2000, 1, 1), date(2035, 12, 31)))
    infusions = [first]
    if reinfusion and draw(st.booleans()):
        infusions.append(first + timedelta(days=draw(st.integers(1, 6 * 365))))
    events: list[RecordedEvent] = []
    if with_events:
        last = CAR_T.spec.follow_up.duration.apply(infusions[-1])
        span = (last - first).days
        for kind in draw(st.lists(st.sampled_from(sorted(CAR_T.events)), max_size=3)):
            events.append(RecordedEvent(kind, first + timedelta(days=draw(st.integers(0, span)))))
    return Facts(CAR_T.id, draw(children(first)), tuple(infusions), tuple(events))


def by_key(calendar: list[PlannedAssessment]) -> dict[str, PlannedAssessment]:
    return {a.key: a for a in calendar}


# -- shape of every calendar --------------------------------------------------------------


@FAST
@given(car_t_facts())
def test_no_window_opens_before_the_baseline(facts: Facts) -> None:
    baseline = facts.protocol.spec.follow_up.baseline_from.apply(min(facts.infusions))
    assert baseline == min(facts.infusions) - timedelta(days=30)
    for a in facts.calendar():
        assert a.window_start >= baseline, a


@FAST
@given(car_t_facts())
def test_nothing_due_or_open_after_the_end_of_follow_up(facts: Facts) -> None:
    end = facts.end
    assert end == max(facts.infusions) + relativedelta(years=15)
    rules = facts.protocol.rules
    for a in facts.calendar():
        if rules[a.assessment].spec.after_follow_up_ends:
            # A duty started within follow-up (a death on its last days) is still owed.
            assert a.window_start <= end, a
            continue
        if rules[a.assessment].spec.after_study:
            # The hand-over past the study's end (malignancy question, Tanner until 5).
            assert a.due > end or a.window_start <= end, a
            continue
        assert a.due <= end, a
        assert a.window_end <= end, a


@FAST
@given(car_t_facts())
def test_due_date_lies_in_its_window(facts: Facts) -> None:
    for a in facts.calendar():
        assert a.window_start <= a.due <= a.window_end, a


@FAST
@given(car_t_facts())
def test_keys_are_unique_and_rows_sorted(facts: Facts) -> None:
    calendar = facts.calendar()
    keys = [a.key for a in calendar]
    assert len(keys) == len(set(keys))
    dues = [a.due for a in calendar]
    assert dues == sorted(dues)
    if not facts.events:  # a death before a re-infusion leaves it nothing to plan
        assert {a.infusion for a in calendar} == set(range(1, len(facts.infusions) + 1))


@FAST
@given(car_t_facts())
def test_same_facts_same_calendar(facts: Facts) -> None:
    first = facts.calendar()
    assert facts.calendar() == first
    shuffled = replace(facts, infusions=facts.infusions[::-1], events=facts.events[::-1])
    assert shuffled.calendar() == first


@FAST
@given(car_t_facts(with_events=False))
def test_an_infusion_ends_the_calendar_of_the_one_before(facts: Facts) -> None:
    calendar = facts.calendar()
    for number, next_start in enumerate(facts.infusions[1:], start=1):
        earlier = [a for a in calendar if a.infusion == number]
        assert earlier
        assert max(a.due for a in earlier) < next_start


@FAST
@given(car_t_facts())
def test_age_rules_agree_with_the_18th_birthday(facts: Facts) -> None:
    majority = facts.patient.birth_date + relativedelta(years=18)
    calendar = facts.calendar()
    for a in calendar:
        if a.assessment in {"growth", "ltfu_exam_pediatric", "neurodevelopment"}:
            assert a.due < majority, a
        if a.assessment == "ltfu_contact":
            assert a.due >= majority, a
    reconsent = [a for a in calendar if a.assessment == "reconsent_majority"]
    if min(facts.infusions) <= majority <= facts.end and not any(
        e.kind in {"death", "withdrawal"} and e.on < majority for e in facts.events
    ):
        assert [a.due for a in reconsent] == [majority]
    else:
        assert reconsent == []


@FAST
@given(car_t_facts(), st.sampled_from(["death", "withdrawal"]), st.integers(0, 16 * 366))
def test_an_end_event_cuts_the_future_and_keeps_the_past(
    facts: Facts, kind: str, days: int
) -> None:
    on = min(facts.infusions) + timedelta(days=days)
    ended = replace(facts, events=(*facts.events, RecordedEvent(kind, on)))
    protocol = facts.protocol
    outlasting = {r for r, rule in protocol.rules.items() if rule.spec.after_follow_up_ends}
    kept = [a for a in ended.calendar() if a.assessment not in outlasting]
    assert kept == [a for a in facts.calendar() if a.due <= on and a.assessment not in outlasting]
    # What outlasts follow-up was started on or before its end (an autopsy request).
    late = [a for a in ended.calendar() if a.assessment in outlasting and a.due > on]
    assert all(a.window_start <= on + timedelta(days=7) for a in late)


# -- recording a result changes only the future -------------------------------------------


@SLOW
@given(car_t_facts(), st.data())
def test_a_result_only_changes_the_future(facts: Facts, data: st.DataObject) -> None:
    calendar = facts.calendar()
    for _ in range(data.draw(st.integers(1, 3), label="results")):
        target = data.draw(st.sampled_from(calendar), label="assessment")
        value = data.draw(st.sampled_from(RESULT_VALUES), label="value")
        day = target.due
        result = RecordedResult(target.infusion, target.assessment, target.occurrence, day, value)
        facts = replace(facts, results=(*facts.results, result))
        after = facts.calendar()
        assert [a for a in after if a.due < day] == [a for a in calendar if a.due < day]
        # On the day itself only what must be done at once is added (an immediate report).
        same_day = {a.key for a in after if a.due == day} - {a.key for a in calendar}
        assert all(by_key(after)[k].category == "safety-reporting" for k in same_day)
        # The assessment the result is for is still there, unchanged.
        assert by_key(after)[target.key] == target
        calendar = after


@SLOW
@given(car_t_facts(with_events=False), st.data())
def test_a_first_year_of_negative_rcl_tests_archives_the_rest(
    facts: Facts, data: st.DataObject
) -> None:
    calendar = facts.calendar()
    rcl = [a for a in calendar if a.assessment == "rcl_test" and a.infusion == 1]
    if not rcl:
        return
    late = [data.draw(st.integers(0, 400), label="days late") for _ in rcl]
    results = tuple(
        RecordedResult(1, "rcl_test", a.occurrence, a.due + timedelta(days=d), "negative")
        for a, d in zip(rcl, late, strict=True)
    )
    after = replace(facts, results=results).calendar()
    last = max(r.on for r in results)
    yearly = [a for a in calendar if a.assessment == "rcl_yearly_test" and a.infusion == 1]
    kept = [a for a in after if a.assessment == "rcl_yearly_test" and a.infusion == 1]
    archived = [a for a in after if a.assessment == "rcl_archive" and a.infusion == 1]
    assert kept == [a for a in yearly if a.due <= last]
    assert [(a.occurrence, a.due) for a in archived] == [
        (a.occurrence, a.due) for a in yearly if a.due > last
    ]


# -- the AAV protocol ---------------------------------------------------------------------


@st.composite
def aav_facts(draw: st.DrawFn) -> Facts:
    first = draw(st.dates(date(2000, 1, 1), date(2035, 12, 31)))
    birth = draw(st.dates(date(1940, 1, 1), first))
    infusions = [first]
    if draw(st.booleans()):
        infusions.append(first + timedelta(days=draw(st.integers(1, 8 * 365))))
    diagnosis = draw(st.sampled_from(sorted(AAV.spec.diagnoses)))
    return Facts(AAV.id, PatientFacts(birth, diagnosis), tuple(infusions))


@FAST
@given(aav_facts())
def test_aav_follow_up_is_five_years_from_the_first_infusion(facts: Facts) -> None:
    first = min(facts.infusions)
    assert facts.end == first + relativedelta(years=5)
    calendar = facts.calendar()
    assert calendar == replace(facts, infusions=(first,)).calendar()
    assert {a.infusion for a in calendar} == {1}
    assert max(a.due for a in calendar) == facts.end
    for a in calendar:
        assert first - timedelta(days=30) <= a.window_start <= a.due <= a.window_end <= facts.end

"""Reporting clocks and post-mortem requests: events that outlast the end of follow-up."""

from __future__ import annotations

from datetime import date

import pytest

from rules import (
    InvalidFacts,
    PatientFacts,
    PlannedAssessment,
    Protocol,
    ProtocolError,
    RecordedEvent,
    build_calendar,
    is_triggered_occurrence,
    parse_protocol,
)

CHILD = PatientFacts(birth_date=date(2012, 3, 14), diagnosis="sle")
INFUSION = date(2024, 1, 31)


def plan(protocol: Protocol, *events: RecordedEvent) -> list[PlannedAssessment]:
    return build_calendar(protocol, CHILD, [INFUSION], events=events)


def by_rule(calendar: list[PlannedAssessment], rule: str) -> list[PlannedAssessment]:
    return [a for a in calendar if a.assessment == rule]


def test_a_serious_event_starts_the_24_hour_sponsor_notification(car_t: Protocol) -> None:
    aware = date(2025, 6, 30)
    calendar = plan(car_t, RecordedEvent("serious_adverse_event", aware, "ROM-001-AE01"))
    (row,) = by_rule(calendar, "sae_sponsor_notification")
    assert (row.due, row.window_start, row.window_end) == (
        date(2025, 7, 1),
        aware,
        date(2025, 7, 1),
    )
    assert row.category == "safety-reporting"
    assert "serious adverse event (ROM-001-AE01) on 2025-06-30" in row.reason


@pytest.mark.parametrize(
    ("event", "rule", "days"),
    [
        ("unexpected_fatal_or_life_threatening_reaction", "ind_safety_report_7_day", 7),
        ("unexpected_serious_reaction", "ind_safety_report_15_day", 15),
    ],
)
def test_ind_safety_report_clocks_count_calendar_days(
    car_t: Protocol, event: str, rule: str, days: int
) -> None:
    aware = date(2024, 12, 28)  # across a year end
    (row,) = by_rule(plan(car_t, RecordedEvent(event, aware, "X-AE01")), rule)
    assert row.due == date.fromordinal(aware.toordinal() + days)
    assert row.window_start == aware


def test_death_requests_an_autopsy_and_keeps_reporting_duties(car_t: Protocol) -> None:
    died = date(2026, 2, 10)
    calendar = plan(
        car_t,
        RecordedEvent("serious_adverse_event", died, "ROM-001-AE02"),
        RecordedEvent("unexpected_fatal_or_life_threatening_reaction", died, "ROM-001-AE02"),
        RecordedEvent("death", died),
    )
    (autopsy,) = by_rule(calendar, "autopsy_vector_request")
    assert autopsy.due == date(2026, 2, 17)
    assert by_rule(calendar, "sae_sponsor_notification")[0].due == date(2026, 2, 11)
    assert by_rule(calendar, "ind_safety_report_7_day")[0].due == date(2026, 2, 17)
    # Everything else ends on the day of death.
    after_death = [
        a.assessment
        for a in calendar
        if a.due > died and a.category not in ("safety-reporting",) and a is not autopsy
    ]
    assert after_death == []


def test_a_reporting_clock_started_after_death_is_not_planned(car_t: Protocol) -> None:
    died = date(2026, 2, 10)
    calendar = plan(
        car_t,
        RecordedEvent("death", died),
        RecordedEvent("serious_adverse_event", date(2026, 3, 1), "late"),
    )
    assert by_rule(calendar, "sae_sponsor_notification") == []


def test_two_serious_events_on_one_day_get_two_clocks(car_t: Protocol) -> None:
    day = date(2025, 1, 5)
    calendar = plan(
        car_t,
        RecordedEvent("serious_adverse_event", day, "A-AE01"),
        RecordedEvent("serious_adverse_event", day, "A-AE02"),
    )
    rows = by_rule(calendar, "sae_sponsor_notification")
    assert len({r.occurrence for r in rows}) == 2
    assert ["A-AE01" in rows[0].reason, "A-AE02" in rows[1].reason] == [True, True]


def test_only_trigger_anchored_rules_may_outlast_follow_up() -> None:
    assert parse_protocol(BROKEN, "ok.yaml").rules["report"].spec.after_follow_up_ends
    with pytest.raises(ProtocolError, match="after_follow_up_ends") as caught:
        parse_protocol(
            BROKEN.replace("    anchor: trigger\n    starts: when_started\n", ""), "broken.yaml"
        )
    assert "broken.yaml" in str(caught.value)
    assert "outlast follow-up" in str(caught.value)


BROKEN = """\
id: broken
version: "1"
title: t
product: p
follow_up: {duration: Y1}
diagnoses: {x: X}
references: {R: {title: r}}
reporting_category: safety-reporting
events:
  death: {description: d, end_follow_up: true, start: [report]}
  withdrawal: {description: w, end_follow_up: true}
assessments:
  - id: report
    name: report
    category: safety-reporting
    anchor: trigger
    starts: when_started
    after_follow_up_ends: true
    schedule: [{at: [D1], window: [-1, 0]}]
    evidence: {basis: regulatory, sources: [R]}
"""


def test_a_fixed_series_keeps_its_number_when_another_event_of_the_day_goes(
    car_t: Protocol,
) -> None:
    day = date(2025, 1, 5)
    first = RecordedEvent("serious_adverse_event", day, "A-AE01", series=0)
    second = RecordedEvent("serious_adverse_event", day, "A-AE02", series=1)
    both = by_rule(plan(car_t, first, second), "sae_sponsor_notification")
    alone = by_rule(plan(car_t, second), "sae_sponsor_notification")
    assert [r.occurrence for r in both] == [2025010501, 2025010502]
    assert [r.occurrence for r in alone] == [2025010502]  # not renumbered to ...01
    assert "A-AE02" in alone[0].reason


def test_unnumbered_starts_take_the_free_numbers_around_fixed_ones(car_t: Protocol) -> None:
    day = date(2025, 1, 5)
    calendar = plan(
        car_t,
        RecordedEvent("serious_adverse_event", day, "B-AE01", series=0),
        RecordedEvent("new_malignancy", day),  # no series: rcl_on_indication etc.
    )
    assert [r.occurrence for r in by_rule(calendar, "sae_sponsor_notification")] == [2025010501]
    assert [r.occurrence for r in by_rule(calendar, "tumour_vector_test")] == [2025010501]


def test_two_fixed_series_that_collide_are_refused(car_t: Protocol) -> None:
    day = date(2025, 1, 5)
    with pytest.raises(InvalidFacts, match="need number 0"):
        plan(
            car_t,
            RecordedEvent("serious_adverse_event", day, "C-AE01", series=0),
            RecordedEvent("serious_adverse_event", day, "C-AE100", series=99),  # 99 % 99
        )


def test_triggered_occurrences_are_told_apart_from_schedule_points(car_t: Protocol) -> None:
    calendar = plan(car_t, RecordedEvent("serious_adverse_event", date(2025, 1, 5), "D-AE01"))
    triggered = {a.assessment for a in calendar if is_triggered_occurrence(a.occurrence)}
    assert triggered == {"sae_sponsor_notification"}
    assert all(
        car_t.rules[a.assessment].spec.anchor.value != "trigger"
        for a in calendar
        if not is_triggered_occurrence(a.occurrence)
    )

"""``build_calendar`` on the bundled protocols, with dates worked out by hand.

Most tests use one child with SLE, born 2014-06-15 (9 years old, 18 on 2032-06-15),
infused on 2024-01-31: a month end, so every month offset exercises clipping.

Assessments anchored on a trigger (a result or an event) are numbered by the day their
series started (see ``triggered``), so their numbers never shift when an earlier-dated
trigger is recorded late.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path

import pytest
from support.protocols import declared_result

from rules import (
    InvalidFacts,
    PatientFacts,
    PlannedAssessment,
    Protocol,
    RecordedEvent,
    RecordedResult,
    build_calendar,
    end_of_follow_up,
    load_protocol,
)

INFUSION = date(2024, 1, 31)
END = date(2039, 1, 31)  # Y15 after INFUSION
CHILD = PatientFacts(date(2014, 6, 15), "sle")
ADULT = PatientFacts(date(1990, 5, 1), "sle")

Row = tuple[int, date, date, date]  # occurrence, due, window start, window end


def plan(
    protocol: Protocol,
    patient: PatientFacts = CHILD,
    infusions: Sequence[date] = (INFUSION,),
    results: Iterable[RecordedResult] = (),
    events: Iterable[RecordedEvent] = (),
) -> list[PlannedAssessment]:
    return build_calendar(protocol, patient, list(infusions), results=results, events=events)


def rows(calendar: list[PlannedAssessment], assessment: str, infusion: int = 1) -> list[Row]:
    return [
        (a.occurrence, a.due, a.window_start, a.window_end)
        for a in calendar
        if a.assessment == assessment and a.infusion == infusion
    ]


def dues(calendar: list[PlannedAssessment], assessment: str) -> list[date]:
    return [a.due for a in calendar if a.assessment == assessment]


def find(calendar: list[PlannedAssessment], key: str) -> PlannedAssessment:
    matches = [a for a in calendar if a.key == key]
    assert len(matches) == 1, f"{key}: {len(matches)} rows"
    return matches[0]


def result(assessment: str, occurrence: int, on: date, value: str) -> RecordedResult:
    return RecordedResult(
        infusion=1, assessment=assessment, occurrence=occurrence, on=on, value=value
    )


def yearly(first: int, last: int, anchor: date = INFUSION) -> list[date]:
    return [anchor.replace(year=anchor.year + n) for n in range(first, last + 1)]


def triggered(day: date, n: int) -> int:
    """The occurrence number of row ``n`` of the triggered series started on ``day``:
    YYYYMMDD * 100 + n. The k-th series started that day (k = 0, 1, ...) has rows
    n = k * (time points per series) + point number."""
    yyyymmdd = day.year * 10_000 + day.month * 100 + day.day
    return yyyymmdd * 100 + n


# -- the basic calendar -------------------------------------------------------------------


def test_rcl_test_due_dates_and_windows(car_t: Protocol) -> None:
    assert rows(plan(car_t), "rcl_test") == [
        (1, date(2024, 4, 30), date(2024, 4, 16), date(2024, 5, 14)),  # M3, -14/+14
        (2, date(2024, 7, 31), date(2024, 7, 1), date(2024, 8, 30)),  # M6, -30/+30
        (3, date(2025, 1, 31), date(2025, 1, 1), date(2025, 3, 2)),  # M12, -30/+30
    ]


def test_reason_names_the_time_point_the_infusion_and_the_window(car_t: Protocol) -> None:
    calendar = plan(car_t)
    assert find(calendar, "1:rcl_test:2").reason == (
        "month 6 after infusion of 2024-01-31; window −30/+30 days"
    )
    assert find(calendar, "1:baseline_evaluation:1").reason == (
        "14 days before infusion of 2024-01-31; window −14/+13 days"
    )
    assert find(calendar, "1:crs_icans_daily_capd:1").reason == (
        "day 1 after infusion of 2024-01-31; window 0/+0 days"
    )
    assert find(calendar, "1:ltfu_exam:3").reason == (
        "year 1 after infusion of 2024-01-31; window 0/+60 days"
    )


def test_every_row_carries_the_protocol_and_its_rule(car_t: Protocol) -> None:
    calendar = plan(car_t)
    assert calendar
    for a in calendar:
        spec = car_t.rules[a.assessment].spec
        assert (a.protocol, a.protocol_version) == ("cd19-car-t-pediatric-autoimmune", "1.0")
        assert (a.name, a.category, a.basis) == (spec.name, spec.category, spec.evidence.basis)
        assert a.key == f"{a.infusion}:{a.assessment}:{a.occurrence}"


def test_baseline_rows_fall_before_the_infusion(car_t: Protocol) -> None:
    calendar = plan(car_t)
    assert rows(calendar, "baseline_evaluation") == [
        (1, date(2024, 1, 17), date(2024, 1, 3), date(2024, 1, 30))
    ]
    assert rows(calendar, "rcl_baseline") == [
        (1, date(2024, 1, 24), date(2024, 1, 3), date(2024, 1, 31))
    ]
    assert calendar[0].assessment == "baseline_evaluation"


def test_month_offsets_clip_to_the_month_end(car_t: Protocol) -> None:
    assert dues(plan(car_t), "cbc_late")[:7] == [
        date(2024, 3, 31),  # M2
        date(2024, 4, 30),  # M3
        date(2024, 5, 31),  # M4
        date(2024, 6, 30),  # M5
        date(2024, 7, 31),  # M6
        date(2024, 10, 31),  # M9
        date(2025, 1, 31),  # M12
    ]


def test_end_of_follow_up_is_15_years_after_the_infusion(car_t: Protocol) -> None:
    assert end_of_follow_up(car_t, [INFUSION]) == END
    calendar = plan(car_t)
    assert max(a.due for a in calendar) == END
    assert max(a.window_end for a in calendar) == END
    last_day = [a for a in calendar if a.due == END]
    assert {a.assessment for a in last_day} == {
        "car_persistence",
        "cbc_late",
        "ltfu_contact",
        "rcl_yearly_test",
        "registry_report",
        "sle_activity",
        "sle_damage_index",
        "tanner_staging",
    }
    for a in last_day:
        assert (a.window_start, a.window_end) == (date(2039, 1, 1), END)  # +30 clipped
        assert a.reason == (
            "year 15 after infusion of 2024-01-31; window −30/+30 days, "
            "closing at the end of follow-up"
        )
    year_14 = find(calendar, "1:registry_report:16")
    assert (year_14.due, year_14.window_end) == (date(2038, 1, 31), date(2038, 3, 2))
    assert "closing" not in year_14.reason


def test_calendar_is_sorted_by_due_date_then_assessment(car_t: Protocol) -> None:
    calendar = plan(car_t)
    order = [(a.due, a.assessment, a.infusion, a.occurrence) for a in calendar]
    assert order == sorted(order)
    assert [a.assessment for a in calendar if a.due == date(2024, 7, 31)] == [
        "bcell_cd19",
        "car_persistence",
        "cbc_late",
        "cd4_subsets",
        "growth",
        "immunoglobulins",
        "infection_review",
        "ltfu_exam",
        "rcl_test",
        "registry_report",
        "reimmunize_inactivated",
        "sle_activity",
        "tanner_staging",
        "vaccine_titres",
    ]


def test_how_many_of_each_assessment(car_t: Protocol) -> None:
    """The whole calendar of one child, counted by hand from the protocol file."""
    assert Counter(a.assessment for a in plan(car_t)) == {
        "baseline_evaluation": 1,
        "rcl_baseline": 1,
        "crs_icans_daily_capd": 14,  # 9 years old: CAPD, never ICE
        "crs_icans_late": 2,
        "cbc_early": 6,
        "cbc_late": 5 + 2 + 8 + 10,
        "bcell_cd19": 3 + 4 + 2 + 4,
        "immunoglobulins": 1 + 4 + 2 + 2 + 3,
        "cd4_subsets": 5 + 2,
        "infection_review": 3,
        "car_persistence": 3 + 2 + 1 + 8 + 10,
        "rcl_test": 3,
        "rcl_yearly_test": 14,
        "ltfu_exam": 2 + 1 + 4,
        "ltfu_exam_pediatric": 3,  # years 6-8, before the 18th birthday
        "ltfu_contact": 7,  # years 9-15
        "sle_activity": 2 + 3 + 8 + 10,
        "sle_damage_index": 15,
        "growth": 4 + 8 + 3,  # to year 8 (age 17)
        "tanner_staging": 1 + 15,
        "endocrine_gonadal": 5,
        "neurodevelopment": 3,
        "reconsent_majority": 1,
        "vaccine_titres": 2,
        "reimmunize_inactivated": 1,
        "reimmunize_live": 1,
        "registry_report": 1 + 1 + 1 + 14,
    }


def test_a_month_recurrence_is_computed_from_the_anchor(
    protocol_text: Callable[..., str], write_protocol: Callable[..., Path]
) -> None:
    text = protocol_text(
        replace={"- at: [M1, M6]": "- every: M1\n        from: M1\n        to: M4"}
    )
    protocol = load_protocol(write_protocol(text))
    calendar = build_calendar(protocol, PatientFacts(date(1980, 1, 1), "dx_a"), [INFUSION])
    assert dues(calendar, "visit") == [
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 31),
    ]


TRIGGERED = """
- id: recheck
  name: Recheck every week until clear
  category: core
  anchor: trigger
  starts: when_started
  schedule:
    - every: W1
      from: W1
      to: W4
  window: [-3, 3]
  result: {type: coded, values: {clear: Clear, positive: Positive}}
  on_result:
    - when: {equals: clear}
      stop: [recheck]
  evidence:
    basis: local-default
    sources: [REF-2]
"""


def test_a_stop_ends_a_triggered_series_until_it_is_started_again(
    protocol_text: Callable[..., str], write_protocol: Callable[..., Path]
) -> None:
    text = protocol_text(
        TRIGGERED,
        replace={
            "    window: [-7, 7]\n": "    window: [-7, 7]\n"
            + declared_result("- when: {equals: positive}")
            + "    on_result:\n"
            "      - when: {equals: positive}\n        start: [recheck]\n"
        },
    )
    protocol = load_protocol(write_protocol(text))
    patient = PatientFacts(date(1980, 1, 1), "dx_a")
    march, july = date(2024, 3, 1), date(2024, 7, 31)
    results = [
        result("visit", 1, march, "positive"),  # recheck weekly from 03-08
        result("recheck", triggered(march, 2), date(2024, 3, 16), "clear"),  # stops 03-22, 03-29
    ]
    calendar = build_calendar(protocol, patient, [INFUSION], results=results)
    assert [(o, d) for o, d, _, _ in rows(calendar, "recheck")] == [
        (triggered(march, 1), date(2024, 3, 8)),
        (triggered(march, 2), date(2024, 3, 15)),
    ]
    # A later positive starts a new series, which the earlier 'clear' does not stop.
    results.append(result("visit", 2, july, "positive"))
    calendar = build_calendar(protocol, patient, [INFUSION], results=results)
    assert [(o, d) for o, d, _, _ in rows(calendar, "recheck")] == [
        (triggered(march, 1), date(2024, 3, 8)),
        (triggered(march, 2), date(2024, 3, 15)),
        (triggered(july, 1), date(2024, 8, 7)),
        (triggered(july, 2), date(2024, 8, 14)),
        (triggered(july, 3), date(2024, 8, 21)),
        (triggered(july, 4), date(2024, 8, 28)),
    ]
    assert find(calendar, f"1:recheck:{triggered(july, 1)}").reason == (
        "week 1 after result 'positive' of visit #2 on 2024-07-31; window −3/+3 days"
    )


# -- diagnoses and ages -------------------------------------------------------------------

DISEASE_RULES = {"sle_activity", "sle_damage_index", "ssc_activity", "ssc_imaging", "jdm_activity"}


@pytest.mark.parametrize(
    ("diagnosis", "expected"),
    [
        ("sle", {"sle_activity", "sle_damage_index"}),
        ("ssc", {"ssc_activity", "ssc_imaging"}),
        ("jdm", {"jdm_activity"}),
    ],
)
def test_disease_activity_follows_the_diagnosis(
    car_t: Protocol, diagnosis: str, expected: set[str]
) -> None:
    calendar = plan(car_t, PatientFacts(CHILD.birth_date, diagnosis))
    assert {a.assessment for a in calendar} & DISEASE_RULES == expected
    first = {
        "sle": ("sle_activity", date(2024, 2, 28)),  # D28
        "ssc": ("ssc_activity", date(2024, 4, 30)),  # M3
        "jdm": ("jdm_activity", date(2024, 4, 30)),  # M3
    }[diagnosis]
    assert dues(calendar, first[0])[0] == first[1]


def test_ice_replaces_capd_from_the_12th_birthday(car_t: Protocol) -> None:
    # Turns 12 on 2024-02-05, day 5 after the infusion.
    calendar = plan(car_t, PatientFacts(date(2012, 2, 5), "sle"))
    assert dues(calendar, "crs_icans_daily_capd") == [date(2024, 2, d) for d in range(1, 5)]
    assert dues(calendar, "crs_icans_daily_ice") == [date(2024, 2, d) for d in range(5, 15)]
    assert [a.occurrence for a in calendar if a.assessment == "crs_icans_daily_ice"] == list(
        range(5, 15)
    )


def test_ice_from_a_leap_day_12th_birthday(car_t: Protocol) -> None:
    # Born on 29 February; infused 2024-02-20, turns 12 on 2024-02-29 (day 9).
    calendar = plan(car_t, PatientFacts(date(2012, 2, 29), "sle"), [date(2024, 2, 20)])
    assert dues(calendar, "crs_icans_daily_capd") == [date(2024, 2, d) for d in range(21, 29)]
    assert dues(calendar, "crs_icans_daily_ice") == [
        date(2024, 2, 29),
        *(date(2024, 3, d) for d in range(1, 6)),
    ]


@pytest.mark.parametrize(
    ("birth", "capd", "ice"),
    [
        (date(2013, 6, 1), 14, 0),  # 10 years old
        (date(2000, 6, 1), 0, 14),  # an adult
        (date(2012, 1, 31), 0, 14),  # 12th birthday on the infusion day
        (date(2012, 2, 14), 13, 1),  # 12th birthday on day 14
        (date(2012, 2, 15), 14, 0),  # 12th birthday on day 15
    ],
)
def test_daily_toxicity_checks_by_age(car_t: Protocol, birth: date, capd: int, ice: int) -> None:
    calendar = plan(car_t, PatientFacts(birth, "sle"))
    assert len(dues(calendar, "crs_icans_daily_capd")) == capd
    assert len(dues(calendar, "crs_icans_daily_ice")) == ice


def test_contraception_counselling_from_age_12(car_t: Protocol) -> None:
    # Turns 12 on 2024-02-05: 12 at day 28, month 6 and month 12.
    assert dues(plan(car_t, PatientFacts(date(2012, 2, 5), "sle")), "contraception_pregnancy") == [
        date(2024, 2, 28),
        date(2024, 7, 31),
        date(2025, 1, 31),
    ]
    # Turns 12 on 2024-05-01: only month 6 and month 12.
    assert dues(plan(car_t, PatientFacts(date(2012, 5, 1), "sle")), "contraception_pregnancy") == [
        date(2024, 7, 31),
        date(2025, 1, 31),
    ]


def test_growth_stops_at_18(car_t: Protocol) -> None:
    # 13 at infusion, 18 on 2028-06-15.
    calendar = plan(car_t, PatientFacts(date(2010, 6, 15), "sle"))
    assert rows(calendar, "growth") == [
        (1, date(2024, 4, 30), date(2024, 4, 16), date(2024, 5, 14)),
        (2, date(2024, 7, 31), date(2024, 7, 17), date(2024, 8, 14)),
        (3, date(2024, 10, 31), date(2024, 10, 17), date(2024, 11, 14)),
        (4, date(2025, 1, 31), date(2025, 1, 17), date(2025, 2, 14)),
        (5, date(2025, 7, 31), date(2025, 7, 1), date(2025, 8, 30)),
        (6, date(2026, 1, 31), date(2026, 1, 1), date(2026, 3, 2)),
        (7, date(2026, 7, 31), date(2026, 7, 1), date(2026, 8, 30)),
        (8, date(2027, 1, 31), date(2027, 1, 1), date(2027, 3, 2)),
        (9, date(2027, 7, 31), date(2027, 7, 1), date(2027, 8, 30)),
        (10, date(2028, 1, 31), date(2028, 1, 1), date(2028, 3, 1)),
    ]


def test_yearly_exam_becomes_a_contact_at_18(car_t: Protocol) -> None:
    # 18 on 2032-06-15, between year 8 (2032-01-31) and year 9 (2033-01-31).
    calendar = plan(car_t)
    assert [(o, d) for o, d, _, _ in rows(calendar, "ltfu_exam_pediatric")] == [
        (1, date(2030, 1, 31)),
        (2, date(2031, 1, 31)),
        (3, date(2032, 1, 31)),
    ]
    assert [(o, d) for o, d, _, _ in rows(calendar, "ltfu_contact")] == list(
        zip(range(4, 11), yearly(9, 15), strict=True)
    )


def test_yearly_exam_becomes_a_contact_on_the_18th_birthday_itself(car_t: Protocol) -> None:
    # 18 on 2032-01-31, exactly year 8: age_from is inclusive, age_below exclusive.
    calendar = plan(car_t, PatientFacts(date(2014, 1, 31), "ssc"))
    assert dues(calendar, "ltfu_exam_pediatric") == yearly(6, 7)
    assert dues(calendar, "ltfu_contact") == yearly(8, 15)


def test_adults_have_contacts_and_no_paediatric_rows(car_t: Protocol) -> None:
    calendar = plan(car_t, ADULT)
    assert dues(calendar, "ltfu_contact") == yearly(6, 15)
    for rule in ("ltfu_exam_pediatric", "growth", "neurodevelopment", "reconsent_majority"):
        assert dues(calendar, rule) == [], rule
    assert len(dues(calendar, "ltfu_exam")) == 7  # years 1-5 are exams at every age


def test_reconsent_on_the_18th_birthday(car_t: Protocol) -> None:
    assert rows(plan(car_t), "reconsent_majority") == [
        (1, date(2032, 6, 15), date(2032, 5, 16), date(2032, 9, 13))
    ]
    assert find(plan(car_t), "1:reconsent_majority:1").reason == (
        "18th birthday (born 2014-06-15); window −30/+90 days"
    )


@pytest.mark.parametrize(
    ("birth", "expected"),
    [
        (date(2006, 1, 31), [(1, date(2024, 1, 31), date(2024, 1, 1), date(2024, 4, 30))]),
        (date(2006, 1, 30), []),  # 18 the day before the infusion
        (date(2000, 6, 1), []),  # an adult
        (date(2020, 6, 15), [(1, date(2038, 6, 15), date(2038, 5, 16), date(2038, 9, 13))]),
        # 18 on 2039-01-15: the window closes at the end of follow-up, 2039-01-31
        (date(2021, 1, 15), [(1, date(2039, 1, 15), date(2038, 12, 16), END)]),
        (date(2021, 1, 31), [(1, END, date(2039, 1, 1), END)]),
        # 18 on 2038-11-03: the +90 window would close on 2039-02-01, one day too late
        (date(2020, 11, 3), [(1, date(2038, 11, 3), date(2038, 10, 4), END)]),
        (date(2020, 11, 2), [(1, date(2038, 11, 2), date(2038, 10, 3), END)]),
        (date(2020, 11, 1), [(1, date(2038, 11, 1), date(2038, 10, 2), date(2039, 1, 30))]),
        (date(2021, 2, 1), []),  # 18 the day after follow-up ends
        (date(2022, 6, 15), []),  # 18 in 2040
    ],
)
def test_reconsent_only_within_follow_up(car_t: Protocol, birth: date, expected: list[Row]) -> None:
    assert rows(plan(car_t, PatientFacts(birth, "jdm")), "reconsent_majority") == expected


def test_reconsent_for_a_leap_day_baby_matches_the_age_rules(car_t: Protocol) -> None:
    # Born 2008-02-29: anniversaries clip to 28 February, and so does the age used by
    # 'age_from'/'age_below', so the re-consent and the switch to adult contacts agree.
    calendar = plan(car_t, PatientFacts(date(2008, 2, 29), "sle"), [date(2020, 2, 28)])
    assert dues(calendar, "reconsent_majority") == [date(2026, 2, 28)]
    assert dues(calendar, "ltfu_exam_pediatric") == []  # years 6+ start at 2026-02-28
    assert dues(calendar, "ltfu_contact")[0] == date(2026, 2, 28)


def test_ages_of_points_before_birth_and_on_leap_days(
    protocol_text: Callable[..., str], write_protocol: Callable[..., Path]
) -> None:
    """Age in whole years is relativedelta's: 0 in the year before birth (a pre-infusion
    point of a newborn), and a 29 February baby has birthdays on the 28th in common years."""
    text = protocol_text(
        """
        - id: infant
          name: Under one
          category: core
          schedule:
            - at: [D-14, D1, Y1, D366]
          window: [0, 0]
          applies_to: {age_below: 1}
          evidence: {basis: guideline, sources: [REF-1]}
        - id: any_age
          name: Any age from 0
          category: core
          schedule:
            - at: [D-14, D1]
          window: [0, 0]
          applies_to: {age_from: 0}
          evidence: {basis: guideline, sources: [REF-1]}
        - id: from_twelve
          name: From 12
          category: core
          schedule:
            - at: [Y1, D366]
          window: [0, 0]
          applies_to: {age_from: 12}
          evidence: {basis: guideline, sources: [REF-1]}
        - id: from_thirteen
          name: From 13
          category: core
          schedule:
            - at: [D365, Y1]
          window: [0, 0]
          applies_to: {age_from: 13}
          evidence: {basis: guideline, sources: [REF-1]}
        """
    )
    protocol = load_protocol(write_protocol(text))
    # Born 3 days before a 2023-02-28 infusion: D-14 is 11 days before birth (age 0).
    newborn = build_calendar(protocol, PatientFacts(date(2023, 2, 25), "dx_a"), [date(2023, 2, 28)])
    assert dues(newborn, "infant") == [date(2023, 2, 14), date(2023, 3, 1)]
    assert dues(newborn, "any_age") == [date(2023, 2, 14), date(2023, 3, 1)]
    # Born 2012-02-29: 11 on 2024-02-28 (a leap year), 12 on 2024-02-29.
    leap = build_calendar(protocol, PatientFacts(date(2012, 2, 29), "dx_a"), [date(2023, 2, 28)])
    assert dues(leap, "from_twelve") == [date(2024, 2, 29)]
    # Born 2008-02-29: still 12 on 2021-02-27, 13 on 2021-02-28 (a common year).
    common = build_calendar(protocol, PatientFacts(date(2008, 2, 29), "dx_a"), [date(2020, 2, 28)])
    assert dues(common, "from_thirteen") == [date(2021, 2, 28)]


# -- results ------------------------------------------------------------------------------


def test_first_year_rcl_all_negative_archives_later_samples(car_t: Protocol) -> None:
    results = [
        result("rcl_test", 1, date(2024, 4, 30), "negative"),
        result("rcl_test", 2, date(2024, 7, 31), "Negative"),
        result("rcl_test", 3, date(2025, 1, 31), "negative "),
    ]
    calendar = plan(car_t, results=results)
    assert dues(calendar, "rcl_yearly_test") == []
    archive = rows(calendar, "rcl_archive")
    assert [(o, d) for o, d, _, _ in archive] == list(zip(range(1, 15), yearly(2, 15), strict=True))
    assert archive[0] == (1, date(2026, 1, 31), date(2026, 1, 1), date(2026, 3, 2))
    assert archive[2] == (3, date(2028, 1, 31), date(2028, 1, 1), date(2028, 3, 1))  # leap year
    assert archive[-1] == (14, END, date(2039, 1, 1), END)
    assert find(calendar, "1:rcl_archive:1").reason == (
        "year 2 after infusion of 2024-01-31; window −30/+30 days; "
        "started by all rcl_test results negative (last on 2025-01-31)"
    )


def test_rcl_yearly_tests_stop_only_after_the_last_negative(car_t: Protocol) -> None:
    # The 12-month sample is resulted late, after the year-2 yearly test was due.
    results = [
        result("rcl_test", 1, date(2024, 4, 30), "negative"),
        result("rcl_test", 2, date(2024, 7, 31), "negative"),
        result("rcl_test", 3, date(2026, 3, 15), "negative"),
    ]
    calendar = plan(car_t, results=results)
    assert dues(calendar, "rcl_yearly_test") == [date(2026, 1, 31)]
    archive = rows(calendar, "rcl_archive")
    assert [(o, d) for o, d, _, _ in archive] == list(zip(range(2, 15), yearly(3, 15), strict=True))


@pytest.mark.parametrize(
    "values",
    [
        ["negative", "negative"],  # the 12-month result is not in yet
        ["negative", "negative", "inconclusive"],
        ["negative", "positive", "negative"],
    ],
)
def test_rcl_archive_needs_every_first_year_result_negative(
    car_t: Protocol, values: list[str]
) -> None:
    on = [date(2024, 4, 30), date(2024, 7, 31), date(2025, 1, 31)]
    results = [result("rcl_test", n + 1, on[n], value) for n, value in enumerate(values)]
    calendar = plan(car_t, results=results)
    assert dues(calendar, "rcl_archive") == []
    assert dues(calendar, "rcl_yearly_test") == yearly(2, 15)


def test_positive_rcl_starts_confirmation_and_monthly_tests(car_t: Protocol) -> None:
    on = date(2024, 5, 2)
    positive = result("rcl_test", 1, on, "POSITIVE")
    before = plan(car_t)
    after = plan(car_t, results=[positive])
    assert rows(after, "rcl_confirm") == [
        (triggered(on, 1), date(2024, 5, 16), date(2024, 5, 2), date(2024, 5, 23))
    ]
    assert triggered(on, 1) == 2024050201
    assert rows(after, "rcl_intensified") == [
        (triggered(on, 1), date(2024, 6, 2), date(2024, 5, 26), date(2024, 6, 9)),
        (triggered(on, 2), date(2024, 7, 2), date(2024, 6, 25), date(2024, 7, 9)),
        (triggered(on, 3), date(2024, 8, 2), date(2024, 7, 26), date(2024, 8, 9)),
    ]
    assert find(after, "1:rcl_confirm:2024050201").reason == (
        "day 14 after result 'POSITIVE' of rcl_test #1 on 2024-05-02; window −14/+7 days"
    )
    assert find(after, "1:rcl_intensified:2024050201").reason == (
        "month 1 after result 'POSITIVE' of rcl_test #1 on 2024-05-02; window −7/+7 days"
    )
    # Nothing else changes: the positive adds rows, it removes none.
    added = {a.key for a in after} - {a.key for a in before}
    assert added == {
        f"1:rcl_confirm:{triggered(on, 1)}",
        *(f"1:rcl_intensified:{triggered(on, n)}" for n in (1, 2, 3)),
        f"1:rcl_positive_report:{triggered(on, 1)}",  # reported the same day
    }
    assert rows(after, "rcl_positive_report") == [(triggered(on, 1), on, on, on)]
    assert [a for a in after if a.key not in added] == before


def test_a_positive_intensified_test_starts_another_confirmation(car_t: Protocol) -> None:
    first, second = date(2024, 5, 2), date(2024, 6, 3)
    results = [
        result("rcl_test", 1, first, "positive"),
        result("rcl_intensified", triggered(first, 1), second, "positive"),
    ]
    assert rows(plan(car_t, results=results), "rcl_confirm") == [
        (triggered(first, 1), date(2024, 5, 16), date(2024, 5, 2), date(2024, 5, 23)),
        (triggered(second, 1), date(2024, 6, 17), date(2024, 6, 3), date(2024, 6, 24)),
    ]


def test_tanner_stage_5_stops_later_staging(car_t: Protocol) -> None:
    results = [result("tanner_staging", 2, date(2025, 2, 10), "5")]
    assert dues(plan(car_t, results=results), "tanner_staging") == [
        date(2024, 7, 31),
        date(2025, 1, 31),
    ]
    results = [result("tanner_staging", 2, date(2025, 2, 10), "4")]
    assert len(dues(plan(car_t, results=results), "tanner_staging")) == 16


def test_low_igg_starts_an_ivig_course(car_t: Protocol) -> None:
    on = date(2024, 4, 30)
    results = [result("immunoglobulins", 3, on, "350")]
    calendar = plan(car_t, results=results)
    assert rows(calendar, "ivig_course") == [
        (triggered(on, 1), date(2024, 5, 7), date(2024, 5, 4), date(2024, 5, 10)),  # W1
        (triggered(on, 2), date(2024, 5, 30), date(2024, 5, 27), date(2024, 6, 2)),  # M1
        (triggered(on, 3), date(2024, 6, 30), date(2024, 6, 27), date(2024, 7, 3)),  # M2
        (triggered(on, 4), date(2024, 7, 30), date(2024, 7, 27), date(2024, 8, 2)),  # M3
    ]
    assert find(calendar, f"1:ivig_course:{triggered(on, 1)}").reason == (
        "week 1 after result '350' of immunoglobulins #3 on 2024-04-30; window −3/+3 days"
    )


@pytest.mark.parametrize("value", ["400", "1200", "not measured", ""])
def test_igg_not_below_400_starts_nothing(car_t: Protocol, value: str) -> None:
    results = [result("immunoglobulins", 3, date(2024, 4, 30), value)]
    assert dues(plan(car_t, results=results), "ivig_course") == []


def test_each_low_igg_starts_its_own_course(car_t: Protocol) -> None:
    april, july = date(2024, 4, 30), date(2024, 7, 31)
    results = [
        result("immunoglobulins", 3, april, "350"),
        result("immunoglobulins", 5, july, "380"),
    ]
    calendar = plan(car_t, results=results)
    assert [(o, d) for o, d, _, _ in rows(calendar, "ivig_course")] == [
        (triggered(april, 1), date(2024, 5, 7)),
        (triggered(april, 2), date(2024, 5, 30)),
        (triggered(april, 3), date(2024, 6, 30)),
        (triggered(april, 4), date(2024, 7, 30)),
        (triggered(july, 1), date(2024, 8, 7)),
        (triggered(july, 2), date(2024, 8, 31)),
        (triggered(july, 3), date(2024, 9, 30)),
        (triggered(july, 4), date(2024, 10, 31)),
    ]


def test_vector_positive_cells_start_integration_site_analysis(car_t: Protocol) -> None:
    on = date(2024, 4, 30)
    results = [result("car_persistence", 4, on, "1.2")]
    assert rows(plan(car_t, results=results), "integration_site_analysis") == [
        (triggered(on, 1), date(2024, 5, 30), date(2024, 4, 30), date(2024, 5, 30))
    ]
    results = [result("car_persistence", 4, date(2024, 4, 30), "0.4")]
    assert rows(plan(car_t, results=results), "integration_site_analysis") == []


def test_series_are_numbered_by_their_start_date_whatever_started_them(
    car_t: Protocol,
) -> None:
    # Integration-site analysis is started both by a malignancy and by a high vector count.
    vector, malignancy = date(2024, 4, 30), date(2028, 6, 1)
    events = [RecordedEvent("new_malignancy", malignancy)]
    results = [result("car_persistence", 4, vector, "2")]
    calendar = plan(car_t, results=results, events=events)
    assert rows(calendar, "integration_site_analysis") == [
        (triggered(vector, 1), date(2024, 5, 30), date(2024, 4, 30), date(2024, 5, 30)),
        (triggered(malignancy, 1), date(2028, 7, 1), date(2028, 6, 1), date(2028, 7, 1)),
    ]
    assert find(calendar, "1:integration_site_analysis:2024043001").reason == (
        "day 30 after result '2' of car_persistence #4 on 2024-04-30; window −30/+0 days"
    )
    assert find(calendar, "1:integration_site_analysis:2028060101").reason == (
        "day 30 after new malignancy on 2028-06-01; window −30/+0 days"
    )


# -- events -------------------------------------------------------------------------------


def test_new_malignancy_starts_tumour_and_vector_tests(car_t: Protocol) -> None:
    on = date(2030, 3, 10)
    calendar = plan(car_t, events=[RecordedEvent("new_malignancy", on)])
    for rule in ("tumour_vector_test", "integration_site_analysis", "rcl_on_indication"):
        assert rows(calendar, rule) == [
            (triggered(on, 1), date(2030, 4, 9), date(2030, 3, 10), date(2030, 4, 9))
        ], rule
    assert find(calendar, f"1:tumour_vector_test:{triggered(on, 1)}").reason == (
        "day 30 after new malignancy on 2030-03-10; window −30/+0 days"
    )


def test_unexplained_illness_starts_rcl_testing_only(car_t: Protocol) -> None:
    calendar = plan(car_t, events=[RecordedEvent("unexplained_illness", date(2026, 5, 5))])
    assert dues(calendar, "rcl_on_indication") == [date(2026, 6, 4)]
    assert dues(calendar, "tumour_vector_test") == []


def test_each_malignancy_starts_its_own_tumour_test(car_t: Protocol) -> None:
    later, earlier = date(2031, 1, 5), date(2028, 6, 1)
    events = [RecordedEvent("new_malignancy", later), RecordedEvent("new_malignancy", earlier)]
    assert rows(plan(car_t, events=events), "tumour_vector_test") == [
        (triggered(earlier, 1), date(2028, 7, 1), date(2028, 6, 1), date(2028, 7, 1)),
        (triggered(later, 1), date(2031, 2, 4), date(2031, 1, 5), date(2031, 2, 4)),
    ]


MALIGNANCY_RULES = ("tumour_vector_test", "integration_site_analysis", "rcl_on_indication")


def test_an_earlier_trigger_recorded_late_keeps_the_numbers_of_later_series(
    car_t: Protocol,
) -> None:
    later = RecordedEvent("new_malignancy", date(2031, 1, 5))
    before = plan(car_t, events=[later])
    assert {a.key for a in before if a.assessment in MALIGNANCY_RULES} == {
        f"1:{rule}:2031010501" for rule in MALIGNANCY_RULES
    }
    # An earlier malignancy, recorded afterwards, adds its own series and renumbers none:
    # every row already planned (and stored) keeps its key and everything else.
    after = plan(car_t, events=[later, RecordedEvent("new_malignancy", date(2028, 6, 1))])
    stored = {a.key for a in before}
    assert [a for a in after if a.key in stored] == before
    assert {a.key for a in after if a.key not in stored} == {
        f"1:{rule}:{triggered(date(2028, 6, 1), 1)}" for rule in MALIGNANCY_RULES
    }


def test_an_earlier_course_recorded_late_keeps_the_numbers_of_a_later_course(
    car_t: Protocol,
) -> None:
    # The July low IgG is entered first; the April one (a multi-row series) comes in late.
    april, july = date(2024, 4, 30), date(2024, 7, 31)
    first = plan(car_t, results=[result("immunoglobulins", 5, july, "380")])
    course = rows(first, "ivig_course")
    assert [o for o, _, _, _ in course] == [triggered(july, n) for n in (1, 2, 3, 4)]
    both = [result("immunoglobulins", 5, july, "380"), result("immunoglobulins", 3, april, "350")]
    later = rows(plan(car_t, results=both), "ivig_course")
    assert later == [r for r in later if r[0] < triggered(july, 1)] + course
    assert [o for o, _, _, _ in later[:4]] == [triggered(april, n) for n in (1, 2, 3, 4)]


def test_two_triggers_on_one_day_get_distinct_numbers(car_t: Protocol) -> None:
    on = date(2028, 6, 1)
    # A high vector count and a malignancy on the same day both start integration-site
    # analysis (one row each): the day's second series follows the first.
    calendar = plan(
        car_t,
        results=[result("car_persistence", 11, on, "2")],
        events=[RecordedEvent("new_malignancy", on)],
    )
    isa = [a for a in calendar if a.assessment == "integration_site_analysis"]
    assert [(a.occurrence, a.due) for a in isa] == [
        (triggered(on, 1), date(2028, 7, 1)),
        (triggered(on, 2), date(2028, 7, 1)),
    ]
    assert {a.reason.split(";")[0] for a in isa} == {
        "day 30 after new malignancy on 2028-06-01",
        "day 30 after result '2' of car_persistence #11 on 2028-06-01",
    }


def test_two_courses_started_on_one_day_do_not_share_numbers(car_t: Protocol) -> None:
    on = date(2024, 7, 31)
    one = [result("immunoglobulins", 5, on, "380")]
    two = [*one, result("immunoglobulins", 4, on, "390")]
    first = rows(plan(car_t, results=one), "ivig_course")
    assert [o for o, _, _, _ in first] == [triggered(on, n) for n in (1, 2, 3, 4)]
    # Four rows a course: the day's second course is numbered on from 4 * 1.
    both = sorted(rows(plan(car_t, results=two), "ivig_course"))  # by occurrence
    assert [o for o, _, _, _ in both] == [triggered(on, n) for n in range(1, 9)]
    assert [(d, s, e) for _, d, s, e in both[:4]] == [(d, s, e) for _, d, s, e in both[4:]]
    # The first course keeps its numbers and dates (rows of a day's series are alike).
    assert both[:4] == first


def test_more_series_on_one_day_than_numbers_allow_are_refused(aav: Protocol) -> None:
    # The steroid course has 8 rows, so 12 courses fit in a day's 99 numbers; a 13th
    # would take 2024031401.. from the next day's course and share its keys.
    day, next_day = date(2024, 3, 13), date(2024, 3, 14)
    raised = [result("aav_alt", n, day, "1.6") for n in range(1, 13)]
    raised.append(result("aav_alt", 13, next_day, "1.6"))
    calendar = plan(aav, HEMOPHILIA, results=raised)
    occurrences = [a.occurrence for a in calendar if a.assessment == "aav_steroid"]
    assert sorted(occurrences) == [
        *(triggered(day, n) for n in range(1, 97)),
        *(triggered(next_day, n) for n in range(1, 9)),
    ]
    raised.append(result("aav_alt", 14, day, "1.6"))
    with pytest.raises(
        InvalidFacts, match="more than 12 series of aav_steroid started on 2024-03-13"
    ):
        plan(aav, HEMOPHILIA, results=raised)


@pytest.mark.parametrize("kind", ["death", "withdrawal"])
def test_death_or_withdrawal_ends_the_calendar_and_keeps_the_past(
    car_t: Protocol, kind: str
) -> None:
    on = date(2030, 3, 10)
    before = plan(car_t)
    after = plan(car_t, events=[RecordedEvent(kind, on)])
    autopsy = [a for a in after if a.assessment == "autopsy_vector_request"]
    assert [a for a in after if a not in autopsy] == [a for a in before if a.due <= on]
    assert max(a.due for a in after if a not in autopsy) == date(2030, 1, 31)
    assert len(after) < len(before)
    # Death (not withdrawal) asks for an autopsy with vector testing, after the end.
    assert [a.due for a in autopsy] == ([date(2030, 3, 17)] if kind == "death" else [])


def test_rows_due_on_the_day_of_death_stay(car_t: Protocol) -> None:
    on = date(2030, 1, 31)  # year 6
    after = plan(car_t, events=[RecordedEvent("death", on)])
    assert max(a.due for a in after if a.assessment != "autopsy_vector_request") == on
    assert "1:ltfu_exam_pediatric:1" in {a.key for a in after}


def test_nothing_started_after_death_is_due(car_t: Protocol) -> None:
    events = [
        RecordedEvent("new_malignancy", date(2030, 3, 1)),  # tests due 2030-03-31
        RecordedEvent("death", date(2030, 3, 10)),
        RecordedEvent("new_malignancy", date(2030, 4, 1)),  # recorded after death
    ]
    calendar = plan(car_t, events=events)
    assert max(a.due for a in calendar if a.category != "vector-safety") <= date(2030, 3, 10)
    assert dues(calendar, "tumour_vector_test") == []
    assert dues(calendar, "autopsy_vector_request") == [date(2030, 3, 17)]


def test_unknown_event_kind_is_refused(car_t: Protocol) -> None:
    with pytest.raises(InvalidFacts, match=r"unknown event 'relapse'.*known: death, "):
        plan(car_t, events=[RecordedEvent("relapse", date(2025, 1, 1))])


# -- re-infusion --------------------------------------------------------------------------

SECOND = date(2024, 9, 15)


def test_reinfusion_ends_the_first_calendar_at_the_second_infusion(car_t: Protocol) -> None:
    calendar = plan(car_t, ADULT, [INFUSION, SECOND])
    first = [a for a in calendar if a.infusion == 1]
    assert max(a.due for a in first) < SECOND
    assert "1:rcl_test:2" in {a.key for a in first}  # 2024-07-31
    assert "1:rcl_test:3" not in {a.key for a in first}  # 2025-01-31
    assert first == [a for a in plan(car_t, ADULT) if a.due < SECOND]


def test_reinfusion_starts_a_full_calendar_of_its_own(car_t: Protocol) -> None:
    calendar = plan(car_t, ADULT, [INFUSION, SECOND])
    second = [a for a in calendar if a.infusion == 2]
    assert all(a.key.startswith("2:") for a in second)
    alone = plan(car_t, ADULT, [SECOND])

    def strip(assessments: list[PlannedAssessment]) -> list[tuple[object, ...]]:
        return [
            (a.assessment, a.occurrence, a.due, a.window_start, a.window_end, a.reason)
            for a in assessments
        ]

    assert strip(second) == strip(alone)
    # Its baseline falls inside the first calendar's time but belongs to the second.
    assert find(calendar, "2:baseline_evaluation:1").due == date(2024, 9, 1)
    assert rows(calendar, "rcl_test", infusion=2)[0][1] == date(2024, 12, 15)


def test_reinfusion_moves_the_end_of_follow_up(car_t: Protocol) -> None:
    assert end_of_follow_up(car_t, [INFUSION, SECOND]) == date(2039, 9, 15)
    calendar = plan(car_t, ADULT, [INFUSION, SECOND])
    assert max(a.due for a in calendar) == date(2039, 9, 15)


def test_infusion_order_does_not_matter(car_t: Protocol) -> None:
    assert plan(car_t, ADULT, [SECOND, INFUSION]) == plan(car_t, ADULT, [INFUSION, SECOND])
    assert end_of_follow_up(car_t, [SECOND, INFUSION]) == date(2039, 9, 15)


def test_reconsent_appears_once_across_infusions(car_t: Protocol) -> None:
    calendar = plan(car_t, CHILD, [INFUSION, date(2026, 3, 1)])
    assert [a.key for a in calendar if a.assessment == "reconsent_majority"] == [
        "2:reconsent_majority:1"
    ]
    child_18_in_first = PatientFacts(date(2006, 5, 1), "sle")  # 18 on 2024-05-01
    calendar = plan(car_t, child_18_in_first, [INFUSION, SECOND])
    assert [a.key for a in calendar if a.assessment == "reconsent_majority"] == [
        "1:reconsent_majority:1"
    ]


def test_results_belong_to_their_infusion(car_t: Protocol) -> None:
    on = date(2024, 12, 16)
    positive = RecordedResult(2, "rcl_test", 1, on, "positive")
    calendar = plan(car_t, ADULT, [INFUSION, SECOND], results=[positive])
    key = f"2:rcl_confirm:{triggered(on, 1)}"
    assert [a.key for a in calendar if a.assessment == "rcl_confirm"] == [key]
    assert find(calendar, key).due == date(2024, 12, 30)


# -- facts the engine refuses -------------------------------------------------------------


@pytest.mark.parametrize(
    ("patient", "infusions", "results", "message"),
    [
        (CHILD, [date(2014, 6, 14)], [], "infusion on 2014-06-14 is before birth on 2014-06-15"),
        (PatientFacts(CHILD.birth_date, "ra"), [INFUSION], [], "diagnosis 'ra' is not covered"),
        (CHILD, [INFUSION, INFUSION], [], "two infusions on the same day"),
        (CHILD, [], [], "at least one infusion date is needed"),
        (
            CHILD,
            [INFUSION],
            [result("rcl_tset", 1, date(2024, 5, 1), "negative")],
            "result for unknown assessment 'rcl_tset'",
        ),
        (
            CHILD,
            [INFUSION],
            [RecordedResult(2, "rcl_test", 1, date(2024, 5, 1), "negative")],
            "result for infusion 2, which does not exist",
        ),
        (
            CHILD,
            [INFUSION],
            [RecordedResult(0, "rcl_test", 1, date(2024, 5, 1), "negative")],
            "result for infusion 0, which does not exist",
        ),
    ],
)
def test_impossible_facts_are_refused(
    car_t: Protocol,
    patient: PatientFacts,
    infusions: list[date],
    results: list[RecordedResult],
    message: str,
) -> None:
    with pytest.raises(InvalidFacts) as caught:
        plan(car_t, patient, infusions, results=results)
    assert message in str(caught.value)


def test_infusion_on_the_day_of_birth_is_allowed(car_t: Protocol) -> None:
    assert plan(car_t, PatientFacts(INFUSION, "sle"))


def test_end_of_follow_up_needs_an_infusion(car_t: Protocol) -> None:
    with pytest.raises(InvalidFacts, match="at least one infusion date is needed"):
        end_of_follow_up(car_t, [])


# -- the AAV protocol ---------------------------------------------------------------------

HEMOPHILIA = PatientFacts(date(1990, 5, 1), "hemophilia_b")


def test_aav_weekly_alt_for_26_weeks_then_six_monthly_to_year_5(aav: Protocol) -> None:
    calendar = plan(aav, HEMOPHILIA)
    weekly = [(n, date.fromordinal(INFUSION.toordinal() + 7 * n)) for n in range(1, 27)]
    assert weekly[0][1] == date(2024, 2, 7)
    assert weekly[-1][1] == date(2024, 7, 31)
    six_monthly = [
        date(2025, 1, 31),
        date(2025, 7, 31),
        date(2026, 1, 31),
        date(2026, 7, 31),
        date(2027, 1, 31),
        date(2027, 7, 31),
        date(2028, 1, 31),
        date(2028, 7, 31),
        date(2029, 1, 31),
    ]
    alt = rows(calendar, "aav_alt")
    assert [(o, d) for o, d, _, _ in alt] == [
        *weekly,
        *zip(range(27, 36), six_monthly, strict=True),
    ]
    assert [(s, e) for _, d, s, e in alt[:26]] == [
        (date.fromordinal(d.toordinal() - 2), date.fromordinal(d.toordinal() + 2))
        for _, d in weekly
    ]
    assert alt[26][2:] == (date(2025, 1, 1), date(2025, 3, 2))
    assert alt[-1][2:] == (date(2029, 1, 1), date(2029, 1, 31))  # closes at the end


def test_aav_follow_up_ends_after_5_years(aav: Protocol) -> None:
    assert end_of_follow_up(aav, [INFUSION]) == date(2029, 1, 31)
    calendar = plan(aav, HEMOPHILIA)
    assert max(a.due for a in calendar) == date(2029, 1, 31)
    assert max(a.window_end for a in calendar) == date(2029, 1, 31)
    assert calendar[0].assessment == "aav_baseline"
    assert calendar[0].due == date(2024, 1, 17)


def test_aav_second_infusion_does_not_restart_follow_up(aav: Protocol) -> None:
    once = plan(aav, HEMOPHILIA)
    assert plan(aav, HEMOPHILIA, [INFUSION, date(2025, 6, 1)]) == once
    assert plan(aav, HEMOPHILIA, [date(2025, 6, 1), INFUSION]) == once
    assert end_of_follow_up(aav, [INFUSION, date(2025, 6, 1)]) == date(2029, 1, 31)
    assert end_of_follow_up(aav, [date(2025, 6, 1), INFUSION]) == date(2029, 1, 31)


def test_aav_raised_alt_starts_a_steroid_course(aav: Protocol) -> None:
    results = [result("aav_alt", 6, date(2024, 3, 13), "1.6")]
    assert dues(plan(aav, HEMOPHILIA, results=results), "aav_steroid") == [
        date(2024, 3, 20),
        date(2024, 3, 27),
        date(2024, 4, 3),
        date(2024, 4, 10),
        date(2024, 4, 17),
        date(2024, 4, 24),
        date(2024, 5, 1),
        date(2024, 5, 8),
    ]
    results = [result("aav_alt", 6, date(2024, 3, 13), "1.4")]
    assert dues(plan(aav, HEMOPHILIA, results=results), "aav_steroid") == []


def test_aav_shedding_stops_when_cleared(aav: Protocol) -> None:
    results = [result("aav_shedding", 5, date(2024, 4, 30), "cleared")]
    assert dues(plan(aav, HEMOPHILIA, results=results), "aav_shedding") == [
        date(2024, 2, 7),  # W1
        date(2024, 2, 14),  # W2
        date(2024, 2, 28),  # W4
        date(2024, 3, 31),  # M2
        date(2024, 4, 30),  # M3
    ]

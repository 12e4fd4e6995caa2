"""Protocol cd19-car-t-pediatric-autoimmune 1.1 (issue 12): dates worked out by hand.

Every expected date below is written out literally, with the arithmetic in a comment,
from the sources the rows cite (CIBMTR windows in days, TCT 2021 "CD4 monthly until
> 200", 21 CFR 312.32 (c)(1) and (c)(2), NCT03435796 "Tanner stage 5 before
discontinuation", the research notes' SSc imaging plan), not from the engine.

Calendar facts used: 2024 is a leap year (29 February); months have
Jan 31, Feb 28/29, Mar 31, Apr 30, May 31, Jun 30, Jul 31, Aug 31, Sep 30, Oct 31.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import pytest

from rules import (
    PatientFacts,
    PlannedAssessment,
    Protocol,
    ProtocolRegistry,
    RecordedEvent,
    RecordedResult,
    build_calendar,
)

CAR_T = "cd19-car-t-pediatric-autoimmune"

Row = tuple[date, date, date]  # due, window start, window end


@pytest.fixture(scope="module")
def v11(registry: ProtocolRegistry) -> Protocol:
    return registry.get(CAR_T, "1.1")


@pytest.fixture(scope="module")
def v10(registry: ProtocolRegistry) -> Protocol:
    return registry.get(CAR_T, "1.0")


def plan(
    protocol: Protocol,
    patient: PatientFacts,
    infusion: date,
    results: Iterable[RecordedResult] = (),
    events: Iterable[RecordedEvent] = (),
) -> list[PlannedAssessment]:
    return build_calendar(protocol, patient, [infusion], results=results, events=events)


def rows(calendar: list[PlannedAssessment], assessment: str) -> list[Row]:
    return [(a.due, a.window_start, a.window_end) for a in calendar if a.assessment == assessment]


def dues(calendar: list[PlannedAssessment], assessment: str) -> list[date]:
    return [a.due for a in calendar if a.assessment == assessment]


def test_the_newest_version_is_the_default_and_1_0_still_loads(
    registry: ProtocolRegistry,
) -> None:
    assert registry.get(CAR_T).version == "1.1"
    assert registry.get(CAR_T, "1.0").version == "1.0"


# -- a 5-year-old with systemic sclerosis --------------------------------------------------
# Born 2019-06-15, infused 2024-06-20 (5 years old). End of follow-up: 2024-06-20 + 15 y
# = 2039-06-20. 18th birthday: 2037-06-15 (year 13 of follow-up).
SSC_CHILD = PatientFacts(date(2019, 6, 15), "ssc")
SSC_INFUSION = date(2024, 6, 20)


def test_ssc_child_has_two_chest_cts_and_a_yearly_echo(v11: Protocol) -> None:
    calendar = plan(v11, SSC_CHILD, SSC_INFUSION)
    # Research notes 8.2: HRCT at M12 and Y2, then only as clinically needed.
    assert rows(calendar, "ssc_imaging") == [
        # M12 = 2025-06-20; -30 d: Jun 20 -> May 21; +30 d: Jun 20 -> Jul 20
        (date(2025, 6, 20), date(2025, 5, 21), date(2025, 7, 20)),
        # Y2 = 2026-06-20
        (date(2026, 6, 20), date(2026, 5, 21), date(2026, 7, 20)),
    ]
    # Echocardiography yearly Y1..Y15 (after Y5 too): 15 rows, the last closing at the
    # end of follow-up (2039-06-20) instead of +30 d.
    echo = rows(calendar, "ssc_echo")
    assert len(echo) == 15
    assert echo[5] == (date(2030, 6, 20), date(2030, 5, 21), date(2030, 7, 20))  # Y6
    assert echo[-1] == (date(2039, 6, 20), date(2039, 5, 21), date(2039, 6, 20))  # Y15


def test_ssc_child_transition_review_at_18(v11: Protocol) -> None:
    calendar = plan(v11, SSC_CHILD, SSC_INFUSION)
    # 18th birthday 2037-06-15; -30 d: Jun 15 -15 -> May 31, -15 -> May 16;
    # +90 d: +15 -> Jun 30, +31 -> Jul 31, +31 -> Aug 31, +13 -> Sep 13.
    expected = [(date(2037, 6, 15), date(2037, 5, 16), date(2037, 9, 13))]
    assert rows(calendar, "transition_endocrine_gonadal") == expected
    assert rows(calendar, "transition_neurocognitive") == expected
    # 20 years old at year 15: no end-of-study transition review.
    assert rows(calendar, "transition_at_study_end") == []


def test_biobank_samples_pre_infusion_m3_m6_m12_then_yearly(v11: Protocol) -> None:
    calendar = plan(v11, SSC_CHILD, SSC_INFUSION)
    biobank = dues(calendar, "biobank_sample")
    assert biobank[:4] == [
        date(2024, 6, 13),  # D-7: Jun 20 - 7
        date(2024, 9, 20),  # M3
        date(2024, 12, 20),  # M6
        date(2025, 6, 20),  # M12
    ]
    # then Y2..Y15: 14 yearly samples, 2026-06-20 .. 2039-06-20
    assert biobank[4:] == [date(2024 + n, 6, 20) for n in range(2, 16)]


# -- the end of year 15: hand-over, then a yearly malignancy question ----------------------


def test_end_of_year_15_hands_over_and_keeps_a_yearly_malignancy_question(
    v11: Protocol,
) -> None:
    calendar = plan(v11, SSC_CHILD, SSC_INFUSION)
    # Hand-over letter at Y15 = 2039-06-20, window -60/0: Jun 20 -20 -> May 31,
    # -31 -> Apr 30, -9 -> Apr 21.
    assert rows(calendar, "ltfu_handover") == [
        (date(2039, 6, 20), date(2039, 4, 21), date(2039, 6, 20))
    ]
    question = rows(calendar, "post_study_malignancy_question")
    # Y16 = 2040-06-20 .. Y30 = 2054-06-20, windows +/-30 d, not closed at the study's end.
    assert len(question) == 15
    assert question[0] == (date(2040, 6, 20), date(2040, 5, 21), date(2040, 7, 20))
    assert question[-1] == (date(2054, 6, 20), date(2054, 5, 21), date(2054, 7, 20))
    first = next(a for a in calendar if a.assessment == "post_study_malignancy_question")
    assert "after the end of study follow-up on 2039-06-20 (hand-over)" in first.reason
    # Nothing else is due after 2039-06-20 but the hand-over rows and Tanner staging.
    late = {a.assessment for a in calendar if a.due > date(2039, 6, 20)}
    assert late == {"post_study_malignancy_question", "tanner_staging"}


def test_tanner_staging_goes_on_past_year_15_until_stage_5(v11: Protocol) -> None:
    calendar = plan(v11, SSC_CHILD, SSC_INFUSION)
    # M6 = 2024-12-20, then Y1..Y20: 2025-06-20 .. 2044-06-20 (21 rows in all).
    tanner = dues(calendar, "tanner_staging")
    assert tanner == [date(2024, 12, 20)] + [date(2024 + n, 6, 20) for n in range(1, 21)]
    # Stage 5 recorded at Y12 (2036-06-20): no Tanner row after it, before or past Y15.
    y12 = 13  # occurrence: M6 is #1, Y1 is #2, ..., Y12 is #13
    stage_5 = RecordedResult(1, "tanner_staging", y12, date(2036, 6, 20), "5")
    after = dues(plan(v11, SSC_CHILD, SSC_INFUSION, results=[stage_5]), "tanner_staging")
    assert after[-1] == date(2036, 6, 20)


# -- a leap-day infusion: CIBMTR windows counted in days -----------------------------------
# SLE, born 2012-01-10, infused 2024-02-29.
LEAP_CHILD = PatientFacts(date(2012, 1, 10), "sle")
LEAP_INFUSION = date(2024, 2, 29)


def test_registry_windows_are_counted_in_days_from_a_leap_day(v11: Protocol) -> None:
    calendar = plan(v11, LEAP_CHILD, LEAP_INFUSION)
    report = rows(calendar, "registry_report")
    # D100: Feb 29 + 31 (to Mar 31) + 30 (Apr 30) + 31 (May 31) = day 92, + 8 -> Jun 8.
    # Window D85-115: Jun 8 - 15 = May 24, Jun 8 + 15 = Jun 23.
    assert report[0] == (date(2024, 6, 8), date(2024, 5, 24), date(2024, 6, 23))
    # D180: Jun 8 (day 100) + 22 -> Jun 30 (day 122), + 31 -> Jul 31 (153), + 27 -> Aug 27.
    # D150 = Jul 28 (Jul 31 is day 153); D210 = Sep 26 (Aug 31 is day 184, + 26).
    assert report[1] == (date(2024, 8, 27), date(2024, 7, 28), date(2024, 9, 26))
    # D365: no 29 February between 2024-03-01 and 2025-02-28, so day 365 = 2025-02-28.
    # D425 = Feb 28 + 31 (Mar 31) + 29 -> Apr 29.
    assert report[2] == (date(2025, 2, 28), date(2025, 2, 28), date(2025, 4, 29))
    # Y2 anniversary (month-based, +/-30 d): 2026-02-28 (no 29 Feb in 2026).
    assert report[3] == (date(2026, 2, 28), date(2026, 1, 29), date(2026, 3, 30))


def test_registry_form_deadlines(v11: Protocol) -> None:
    calendar = plan(v11, LEAP_CHILD, LEAP_INFUSION)
    assert rows(calendar, "registry_form_due") == [
        # D130 = Jun 8 (D100) + 30 -> Jul 8; opens with the contact window D85 = May 24.
        (date(2024, 7, 8), date(2024, 5, 24), date(2024, 7, 8)),
        # D225 = Aug 27 (D180) + 4 -> Aug 31, + 30 -> Sep 30, + 11 -> Oct 11; opens D150.
        (date(2024, 10, 11), date(2024, 7, 28), date(2024, 10, 11)),
    ]


def test_the_one_year_window_ends_on_day_425_when_the_year_has_a_29_february(
    v10: Protocol, v11: Protocol
) -> None:
    patient = PatientFacts(date(2012, 1, 10), "sle")
    infusion = date(2023, 3, 10)  # its first year holds 2024-02-29
    # 1.0: Y1 anniversary 2024-03-10 is day 366; + 60 -> 2024-05-09 = day 426.
    old = rows(plan(v10, patient, infusion), "registry_report")[2]
    assert old == (date(2024, 3, 10), date(2024, 3, 10), date(2024, 5, 9))
    # 1.1: D365 = 2024-03-09; D425 = Mar 9 + 22 -> Mar 31, + 30 -> Apr 30, + 8 -> May 8.
    new = rows(plan(v11, patient, infusion), "registry_report")[2]
    assert new == (date(2024, 3, 9), date(2024, 3, 9), date(2024, 5, 8))


# -- CD4 150 at month 3, then 250 ----------------------------------------------------------
# SLE, born 2014-06-15, infused 2025-01-31 (a month end: month offsets clip).
CD4_CHILD = PatientFacts(date(2014, 6, 15), "sle")
CD4_INFUSION = date(2025, 1, 31)
M3 = date(2025, 4, 30)  # Jan 31 + 3 months, clipped to 30 April
SERIES = 20250430 * 100  # triggered occurrences: YYYYMMDD * 100 + n, started on M3's result


def test_cd4_at_most_200_at_month_3_continues_monthly_until_above_200(v11: Protocol) -> None:
    low = RecordedResult(1, "cd4_subsets", 3, M3, "150")  # occurrence 3 = M3
    calendar = plan(v11, CD4_CHILD, CD4_INFUSION, results=[low])
    monthly = rows(calendar, "cd4_monthly")
    # M1 .. M24 after 2025-04-30, each -7/+7 d: 2025-05-30, 2025-06-30, 2025-07-30, ...
    assert len(monthly) == 24
    assert monthly[:3] == [
        (date(2025, 5, 30), date(2025, 5, 23), date(2025, 6, 6)),
        (date(2025, 6, 30), date(2025, 6, 23), date(2025, 7, 7)),
        (date(2025, 7, 30), date(2025, 7, 23), date(2025, 8, 6)),
    ]
    # The second monthly count, on 2025-06-30, is 250: the series ends after it.
    high = RecordedResult(1, "cd4_monthly", SERIES + 2, date(2025, 6, 30), "250")
    ended = plan(v11, CD4_CHILD, CD4_INFUSION, results=[low, high])
    assert dues(ended, "cd4_monthly") == [date(2025, 5, 30), date(2025, 6, 30)]
    # The scheduled counts go on: M6 = 2025-07-31, M12 = 2026-01-31.
    assert date(2025, 7, 31) in dues(ended, "cd4_subsets")


def test_cd4_at_most_200_before_month_3_starts_nothing(v11: Protocol) -> None:
    m2 = RecordedResult(1, "cd4_subsets", 2, date(2025, 3, 31), "150")  # M2, clipped
    assert dues(plan(v11, CD4_CHILD, CD4_INFUSION, results=[m2]), "cd4_monthly") == []
    exactly_200 = RecordedResult(1, "cd4_subsets", 3, M3, "200")  # <= 200 counts
    assert len(dues(plan(v11, CD4_CHILD, CD4_INFUSION, results=[exactly_200]), "cd4_monthly")) == 24
    above = RecordedResult(1, "cd4_subsets", 3, M3, "201")
    assert dues(plan(v11, CD4_CHILD, CD4_INFUSION, results=[above]), "cd4_monthly") == []


# -- integration-site analysis follows the clonal pattern, not 1 % of cells ----------------


def test_isa_is_not_started_by_early_expansion_but_by_a_clone(v10: Protocol, v11: Protocol) -> None:
    # Day 14 (2025-02-14): 1.0 read '5' as 5 % vector-positive cells and started ISA.
    d14 = RecordedResult(1, "car_persistence", 2, date(2025, 2, 14), "5")
    old = plan(v10, CD4_CHILD, CD4_INFUSION, results=[d14])
    assert dues(old, "integration_site_analysis") == [date(2025, 3, 16)]  # Feb 14 + 30
    # 1.1: the result is copies/ug DNA and starts nothing.
    assert (
        dues(plan(v11, CD4_CHILD, CD4_INFUSION, results=[d14]), "integration_site_analysis") == []
    )
    # The clonal pattern is first looked at on M3 (2025-04-30), never before.
    assert dues(plan(v11, CD4_CHILD, CD4_INFUSION), "car_clonality")[0] == M3
    clone = RecordedResult(1, "car_clonality", 1, M3, "dominant_clone")
    new = plan(v11, CD4_CHILD, CD4_INFUSION, results=[clone])
    # D30 after 2025-04-30: + 31 (May 31) -> day 31, so day 30 = 2025-05-30; window -30/0.
    assert rows(new, "integration_site_analysis") == [
        (date(2025, 5, 30), date(2025, 4, 30), date(2025, 5, 30))
    ]


# -- death at year 3 -----------------------------------------------------------------------


def test_death_at_year_3_tests_archived_samples_and_requests_autopsy(v11: Protocol) -> None:
    death = RecordedEvent("death", date(2027, 6, 20))  # Y3 after 2024-06-20
    calendar = plan(v11, SSC_CHILD, SSC_INFUSION, events=[death])
    # Autopsy request D7 = Jun 27, window -7/+7 -> Jun 20 .. Jul 4.
    assert rows(calendar, "autopsy_vector_request") == [
        (date(2027, 6, 27), date(2027, 6, 20), date(2027, 7, 4))
    ]
    # Archived samples tested within 30 days: Jun 20 + 10 -> Jun 30, + 20 -> Jul 20.
    assert rows(calendar, "archived_samples_test_after_death") == [
        (date(2027, 7, 20), date(2027, 6, 20), date(2027, 7, 20))
    ]
    # CIBMTR Form 2900 within 7 days.
    assert rows(calendar, "cibmtr_form_2900") == [
        (date(2027, 6, 27), date(2027, 6, 20), date(2027, 6, 27))
    ]
    # All three are reporting duties: the application keeps them due after the death.
    categories = {
        a.category
        for a in calendar
        if a.assessment
        in {"autopsy_vector_request", "archived_samples_test_after_death", "cibmtr_form_2900"}
    }
    assert categories == {v11.reporting_category}
    # Nothing scheduled after the death: no hand-over, no Tanner past it.
    scheduled_late = [
        a
        for a in calendar
        if a.due > date(2027, 6, 20) and a.occurrence < 100_000_000  # not event-started
    ]
    assert scheduled_late == []


# -- a patient turning 18 in year 7 --------------------------------------------------------
# Born 2010-08-14, infused 2021-09-01 (11 years old); 18 on 2028-08-14, before Y7 = 2028-09-01.
TEEN = PatientFacts(date(2010, 8, 14), "jdm")
TEEN_INFUSION = date(2021, 9, 1)


def test_turning_18_in_year_7_gets_the_transition_review(v11: Protocol) -> None:
    calendar = plan(v11, TEEN, TEEN_INFUSION)
    # Aug 14 - 30: -14 -> Jul 31, -16 -> Jul 15.
    # Aug 14 + 90: +17 -> Aug 31, +30 -> Sep 30, +31 -> Oct 31, +12 -> Nov 12.
    expected = [(date(2028, 8, 14), date(2028, 7, 15), date(2028, 11, 12))]
    assert rows(calendar, "transition_endocrine_gonadal") == expected
    assert rows(calendar, "transition_neurocognitive") == expected
    # Y6 (2027-09-01, 17 years old) is the last paediatric exam; Y7 is an adult contact.
    assert dues(calendar, "ltfu_exam_pediatric")[-1] == date(2027, 9, 1)
    assert dues(calendar, "ltfu_contact")[0] == date(2028, 9, 1)


# -- 21 CFR 312.32: both clocks for a fatal or life-threatening SUSAR ----------------------


def test_a_fatal_or_life_threatening_susar_gets_the_7_and_the_15_day_reports(
    v10: Protocol, v11: Protocol
) -> None:
    aware = date(2026, 1, 5)
    event = RecordedEvent("unexpected_fatal_or_life_threatening_reaction", aware, "adverse event X")
    calendar = plan(v11, SSC_CHILD, SSC_INFUSION, events=[event])
    # (c)(2): 7 calendar days -> 2026-01-12; (c)(1): 15 calendar days -> 2026-01-20.
    assert rows(calendar, "ind_safety_report_7_day") == [
        (date(2026, 1, 12), date(2026, 1, 5), date(2026, 1, 12))
    ]
    assert rows(calendar, "ind_safety_report_15_day") == [
        (date(2026, 1, 20), date(2026, 1, 5), date(2026, 1, 20))
    ]
    # 1.0 planned the 7-day report only.
    old = plan(v10, SSC_CHILD, SSC_INFUSION, events=[event])
    assert dues(old, "ind_safety_report_15_day") == []

"""The dashboard's figures: on-time rate, overdue ages, risk of loss, oldest overdue."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import Engine
from support.factories import ACTOR, add_sites, enroll_committed, record, rows_of

import rules
from surveillance.kit.db import read_session, write_session
from surveillance.patients import compliance
from surveillance.patients.changes import change_status
from surveillance.patients.due_list import DueState, due_list

ON = date(2026, 11, 25)
# ROM-101, infused 2024-01-31: the month-3 RCL test, window 2024-04-16..05-14.
RCL_1 = "ROM-101:1:rcl_test:1"
RCL_2 = "ROM-101:1:rcl_test:2"  # month 6, window to 2024-08-14
RCL_3 = "ROM-101:1:rcl_test:3"
# Yearly exams: Y1 window 2025-01-31..04-01, Y2 2026-01-01..03-02, Y3 2027-01-01..03-02.
EXAM_Y1 = "ROM-101:1:ltfu_exam:3"
EXAM_Y2 = "ROM-101:1:ltfu_exam:4"


@pytest.fixture
def cohort(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> None:
    """At Rome ROM-101 (infused 2024-01-31) and ROM-102 (2026-06-01), nothing recorded;
    ERL-001 at Erlangen, like ROM-101."""
    add_sites(engine)
    enroll_committed(engine, registry, now, study_id="ROM-101")
    enroll_committed(engine, registry, now, study_id="ROM-102", infusion_date=date(2026, 6, 1))
    enroll_committed(engine, registry, now, study_id="ERL-001", site_id="Erlangen")


def _figures(engine: Engine, on: date = ON, site: str = "Rome") -> compliance.SiteCompliance:
    with read_session(engine) as session:
        (figures,) = compliance.site_compliance(session, site_ids=[site], on=on)
    return figures


def _figures_since(engine: Engine, since: date) -> compliance.SiteCompliance:
    with read_session(engine) as session:
        (figures,) = compliance.site_compliance(session, site_ids=["Rome"], on=ON, since=since)
    return figures


def _record(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, key: str, **kw: object
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, key, **kw)  # type: ignore[arg-type]


def _at_risk(engine: Engine, on: date = ON, site: str = "Rome") -> list[str]:
    with read_session(engine) as session:
        return [p.study_id for p in compliance.at_risk_of_loss(session, site_ids=[site], on=on)]


class TestOnTimeRate:
    def test_overdue_agrees_with_the_due_list(
        self, engine: Engine, registry: rules.ProtocolRegistry, cohort: None
    ) -> None:
        figures = _figures(engine)
        with read_session(engine) as session:
            overdue = due_list(
                session,
                site_id="Rome",
                on=ON,
                registry=registry,
                states=(DueState.overdue,),
                limit=10_000,
            )
        assert figures.overdue == len(overdue) > 0
        assert (
            figures.overdue_0_14 + figures.overdue_15_60 + figures.overdue_over_60
            == figures.overdue
        )
        assert (figures.completed, figures.missed, figures.on_time_rate) == (0, 0, 0.0)

    def test_each_outcome_moves_the_right_counter(
        self, engine: Engine, registry: rules.ProtocolRegistry, now: datetime, cohort: None
    ) -> None:
        before = _figures(engine)
        _record(engine, registry, now, RCL_1, on=date(2024, 5, 1))  # inside the window
        _record(engine, registry, now, RCL_2, on=date(2024, 9, 30))  # late: a deviation
        _record(engine, registry, now, RCL_3, outcome="missed")
        _record(engine, registry, now, EXAM_Y1, outcome="not_done", reason="declined")
        after = _figures(engine)
        assert after.completed_on_time == before.completed_on_time + 1
        assert after.completed == before.completed + 2
        assert after.missed == before.missed + 1
        assert after.overdue == before.overdue - 4
        assert after.closed == before.closed - 1  # not done does not count
        assert after.on_time_rate == pytest.approx(1 / after.closed)

    def test_a_window_still_open_does_not_count(
        self, engine: Engine, registry: rules.ProtocolRegistry, now: datetime, cohort: None
    ) -> None:
        on = date(2024, 5, 1)  # RCL_1's window is open until 2024-05-14
        before = _figures(engine, on)
        _record(engine, registry, now, RCL_1, on=date(2024, 4, 20))
        assert _figures(engine, on) == before

    def test_a_site_with_nothing_closed_has_no_rate(self, engine: Engine, cohort: None) -> None:
        figures = _figures(engine, date(2023, 1, 1))
        assert (figures.closed, figures.on_time_rate) == (0, None)
        with read_session(engine) as session:
            assert compliance.site_compliance(session, site_ids=["Nowhere"], on=ON) == [
                compliance.SiteCompliance("Nowhere")
            ]

    def test_the_figures_equal_a_hand_count(
        self, engine: Engine, registry: rules.ProtocolRegistry, now: datetime, cohort: None
    ) -> None:
        _record(engine, registry, now, RCL_1, on=date(2024, 5, 1))  # on time
        _record(engine, registry, now, RCL_2, on=date(2024, 9, 30))  # late
        _record(engine, registry, now, RCL_3, outcome="missed")
        _record(engine, registry, now, EXAM_Y1, outcome="not_done", reason="declined")
        _record(engine, registry, now, EXAM_Y2, on=date(2026, 2, 1))  # on time
        with read_session(engine) as session:
            rows = [r for study in ("ROM-101", "ROM-102") for r in rows_of(session, study)]
        closed = [r for r in rows if r.window_end < ON]
        on_time = [
            r
            for r in closed
            if r.status == "completed"
            and r.performed_on is not None
            and r.window_start <= r.performed_on <= r.window_end
        ]
        completed = [r for r in closed if r.status == "completed"]
        missed = [r for r in closed if r.status == "missed"]
        ages = [(ON - r.window_end).days for r in closed if r.status == "pending"]
        assert len(on_time) == 2
        assert len(completed) == 3
        assert len(missed) == 1
        assert ages
        assert _figures(engine) == compliance.SiteCompliance(
            "Rome",
            completed_on_time=len(on_time),
            completed=len(completed),
            missed=len(missed),
            overdue=len(ages),
            overdue_0_14=sum(1 for d in ages if d <= 14),
            overdue_15_60=sum(1 for d in ages if 15 <= d <= 60),
            overdue_over_60=sum(1 for d in ages if d > 60),
            rate_overdue=len(ages),
        )
        # The dashboard's 12 months: the rate counts the windows closed since then only.
        since = date(2025, 11, 25)
        period = [r for r in closed if r.window_end >= since]
        figures = _figures_since(engine, since)
        assert figures.since == since
        assert figures.completed_on_time == sum(1 for r in on_time if r.window_end >= since)
        assert figures.completed == sum(1 for r in period if r.status == "completed") == 1
        assert figures.missed == sum(1 for r in period if r.status == "missed")
        assert figures.rate_overdue == sum(1 for r in period if r.status == "pending") > 0
        assert figures.overdue == len(ages)  # the ages still count every overdue row

    @pytest.mark.parametrize(
        "on", [date(2024, 5, 28), date(2024, 5, 29), date(2024, 7, 13), date(2024, 7, 14), ON]
    )
    def test_overdue_ages_match_the_days_overdue(
        self, engine: Engine, registry: rules.ProtocolRegistry, cohort: None, on: date
    ) -> None:
        with read_session(engine) as session:
            items = compliance.oldest_overdue(
                session, site_ids=["Rome"], on=on, registry=registry, per_site=10_000
            )
        days = [item.days_overdue for item in items]
        figures = _figures(engine, on)
        assert figures.overdue_0_14 == sum(1 for d in days if d <= 14)
        assert figures.overdue_15_60 == sum(1 for d in days if 15 <= d <= 60)
        assert figures.overdue_over_60 == sum(1 for d in days if d > 60)


class TestAtRiskOfLoss:
    """Yearly contacts are the rules in ``YEARLY_CONTACTS``; ltfu_exam's month-3 and month-6
    visits belong to that rule and count too."""

    def test_two_lapsed_yearly_contacts_put_a_patient_at_risk(
        self, engine: Engine, cohort: None
    ) -> None:
        # ROM-101: Y1 and Y2 exams overdue. ROM-102: only the month-3 exam has closed so far.
        assert _at_risk(engine) == ["ROM-101"]
        with read_session(engine) as session:
            (patient,) = compliance.at_risk_of_loss(session, site_ids=["Rome"], on=ON)
        assert (patient.earlier_window_end, patient.latest_window_end) == (
            date(2025, 4, 1),
            date(2026, 3, 2),
        )

    def test_one_contact_made_is_enough(
        self, engine: Engine, registry: rules.ProtocolRegistry, now: datetime, cohort: None
    ) -> None:
        _record(engine, registry, now, EXAM_Y2, on=date(2026, 2, 1))
        assert _at_risk(engine) == []

    def test_missed_counts_like_overdue(
        self, engine: Engine, registry: rules.ProtocolRegistry, now: datetime, cohort: None
    ) -> None:
        _record(engine, registry, now, "ROM-101:1:ltfu_exam:2", on=date(2024, 7, 31))  # month 6
        _record(engine, registry, now, EXAM_Y1, outcome="missed")
        assert (
            _at_risk(engine, date(2026, 2, 15)) == []
        )  # Y2's window still open: M6 done, Y1 missed
        assert _at_risk(engine) == ["ROM-101"]  # Y1 missed, Y2 overdue

    def test_only_active_patients_of_the_sites_asked_about(
        self, engine: Engine, registry: rules.ProtocolRegistry, now: datetime, cohort: None
    ) -> None:
        assert _at_risk(engine, site="Erlangen") == ["ERL-001"]
        with write_session(engine) as session:
            change_status(
                session,
                study_id="ROM-101",
                status="withdrawn",
                on=date(2026, 6, 1),
                reason="consent withdrawn",
                actor=ACTOR,
                registry=registry,
                now=now,
            )
        assert _at_risk(engine) == []


class TestOldestOverdue:
    def test_per_site_oldest_first_with_days_and_names(
        self, engine: Engine, registry: rules.ProtocolRegistry, cohort: None
    ) -> None:
        with read_session(engine) as session:
            items = compliance.oldest_overdue(
                session, site_ids=["Rome", "Erlangen"], on=ON, registry=registry, per_site=3
            )
            rows = [r for study in ("ROM-101", "ROM-102") for r in rows_of(session, study)]
        assert [i.site_id for i in items] == ["Erlangen"] * 3 + ["Rome"] * 3
        rome = [i for i in items if i.site_id == "Rome"]
        oldest = min(r.window_end for r in rows if r.status == "pending" and r.window_end < ON)
        assert rome[0].window_end == oldest
        assert [i.window_end for i in rome] == sorted(i.window_end for i in rome)
        assert all(i.days_overdue == (ON - i.window_end).days for i in items)
        assert all(i.name and i.name != i.key.split(":")[2] for i in items)

"""The patient list (one statement per page, whatever the page holds) and the enrolment and
re-infusion previews (they write nothing), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event
from support.factories import AAV, add_sites, count, enrolment

import rules
from surveillance.errors import InvalidInput
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.patients.changes import change_status
from surveillance.patients.due_list import DueState, due_list
from surveillance.patients.enrolment import enroll
from surveillance.patients.patient_list import PatientFilter, patient_page
from surveillance.patients.previews import preview_enrolment, preview_infusion
from surveillance.records.patients import Infusion, Patient

TODAY = date(2026, 11, 25)


@pytest.fixture
def cohort(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> Engine:
    """Rome: ROM-001..ROM-060 (ROM-060 on the AAV protocol, ROM-059 withdrawn, ROM-058
    infused today: nothing overdue yet); Erlangen: ERL-001."""
    add_sites(engine)
    patients = [
        enrolment(study_id=f"ROM-{n:03d}", infusion_date=date(2024, 1, 31)) for n in range(1, 58)
    ]
    patients += [
        enrolment(study_id="ROM-058", infusion_date=TODAY),
        enrolment(study_id="ROM-059"),
        enrolment(study_id="ROM-060", protocol_id=AAV, diagnosis="hemophilia_b", sex="M"),
        enrolment(study_id="ERL-001", site_id="Erlangen"),
    ]
    with write_session(engine) as session:
        enroll(session, patients, registry=registry, now=now, actor="test")
        change_status(
            session,
            study_id="ROM-059",
            status="withdrawn",
            on=date(2026, 11, 1),
            reason="test",
            actor="test",
            registry=registry,
            now=now,
        )
    return engine


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count_one(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count_one)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count_one)


def _page(
    engine: Engine, registry: rules.ProtocolRegistry, after: str | None = None, **wanted: Any
) -> Any:
    with read_session(engine) as session:
        return patient_page(
            session,
            site_id="Rome",
            on=TODAY,
            reporting=registry.reporting_categories(),
            wanted=PatientFilter(**wanted),
            after=after,
        )


class TestPatientList:
    def test_a_page_is_one_statement_with_the_total_and_the_next_start(
        self, cohort: Engine, registry: rules.ProtocolRegistry
    ) -> None:
        with _statements(cohort) as seen:
            first = _page(cohort, registry)
        assert len([s for s in seen if "patients" in s]) == 1, seen
        assert (first.total, len(first.rows), first.next_after) == (60, 50, "ROM-050")
        rest = _page(cohort, registry, after=first.next_after)
        assert (rest.total, [r.study_id for r in rest.rows][:2], rest.next_after) == (
            60,
            ["ROM-051", "ROM-052"],
            None,
        )
        assert _page(cohort, registry, after="ROM-999").total == 60

    def test_counts_overdue_and_due_as_the_due_list_does(
        self, cohort: Engine, registry: rules.ProtocolRegistry
    ) -> None:
        first = _page(cohort, registry)
        rows = first.rows + _page(cohort, registry, after=first.next_after).rows
        counted = {r.study_id: (r.overdue, r.due) for r in rows}
        with read_session(cohort) as session:
            items = due_list(
                session,
                site_id="Rome",
                on=TODAY,
                registry=registry,
                states=(DueState.overdue, DueState.due),
                limit=100_000,
            )
        listed = Counter((item.study_id, item.state) for item in items)
        assert counted == {
            r.study_id: (listed[r.study_id, DueState.overdue], listed[r.study_id, DueState.due])
            for r in rows
        }
        assert counted["ROM-001"][0] > 0
        assert counted["ROM-058"][0] < counted["ROM-001"][0]  # infused today
        assert counted["ROM-058"][1] > 0  # its day-0 checks are due

    @pytest.mark.parametrize(
        ("wanted", "expected"),
        [
            ({"search": "rom-05"}, [f"ROM-05{n}" for n in range(10)]),
            ({"search": "_"}, []),  # a LIKE wildcard is a character
            ({"search": "%"}, []),
            ({"status": "withdrawn"}, ["ROM-059"]),
            ({"protocol": AAV}, ["ROM-060"]),
        ],
    )
    def test_search_and_filters(
        self,
        cohort: Engine,
        registry: rules.ProtocolRegistry,
        wanted: dict[str, Any],
        expected: list[str],
    ) -> None:
        page = _page(cohort, registry, **wanted)
        assert [r.study_id for r in page.rows] == expected
        assert page.total == len(expected)

    def test_overdue_only_keeps_the_patients_with_something_overdue(
        self, cohort: Engine, registry: rules.ProtocolRegistry
    ) -> None:
        every = _page(cohort, registry, search="ROM-05")
        overdue = _page(cohort, registry, search="ROM-05", overdue_only=True)
        expected = [r.study_id for r in every.rows if r.overdue]
        assert "ROM-050" in expected
        assert [r.study_id for r in overdue.rows] == expected
        assert overdue.total == len(expected)


class TestPreviews:
    def test_an_enrolment_preview_is_the_calendar_and_writes_nothing(
        self, engine: Engine, registry: rules.ProtocolRegistry, now: datetime
    ) -> None:
        add_sites(engine)
        with write_session(engine) as session:
            calendar = preview_enrolment(
                session, enrolment(study_id="ROM-300"), registry=registry, now=now, actor="t"
            )
        assert calendar
        assert {row["key"].split(":")[0] for row in calendar} == {"ROM-300"}
        with read_session(engine) as session:
            assert (count(session, Patient), count(session, AuditEntry)) == (0, 0)

    def test_an_enrolment_preview_refuses_as_enrolling_does(
        self, engine: Engine, registry: rules.ProtocolRegistry, now: datetime
    ) -> None:
        add_sites(engine)
        with (
            write_session(engine) as session,
            pytest.raises(InvalidInput, match="before the birth date") as refused,
        ):
            preview_enrolment(
                session,
                enrolment(study_id="ROM-300", infusion_date=date(2010, 1, 1)),
                registry=registry,
                now=now,
                actor="t",
            )
        assert refused.value.field == "infusion_date"

    def test_a_reinfusion_preview_is_the_difference_and_writes_nothing(
        self, cohort: Engine, registry: rules.ProtocolRegistry, now: datetime
    ) -> None:
        with read_session(cohort) as session:
            before = (count(session, Infusion), count(session, AuditEntry))
        with write_session(cohort) as session:
            change = preview_infusion(
                session,
                study_id="ROM-001",
                on=date(2026, 6, 1),
                actor="t",
                registry=registry,
                now=now,
                expected_version=1,
            )
        assert change.added
        assert change.cancelled or change.moved
        with read_session(cohort) as session:
            assert (count(session, Infusion), count(session, AuditEntry)) == before

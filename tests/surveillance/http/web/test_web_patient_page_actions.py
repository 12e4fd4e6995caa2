"""The patient page as the place to act: the reason for every date, record and reschedule
from it (the forms on each assessment's own page), and a timeline whose marks are focusable
and never on top of each other (over HTTP, on SQLite)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col
from support.web_support import SiteDb, csrf_of, sign_in_as

from surveillance.http.web.timeline import TimelineItem, build_timeline
from surveillance.kit.db import read_session
from surveillance.records.patients import Assessment, Patient

# ROM-101, infused 2024-01-31, today 2026-11-25: the month-3 RCL test is long overdue.
RCL_1 = "ROM-101:1:rcl_test:1"
PAGE = "/patients/ROM-101"
TODAY = date(2026, 11, 25)


@pytest.fixture
def nurse(pages: TestClient) -> str:
    sign_in_as(pages, "nurse")
    return csrf_of(pages.get("/sites/Rome/due"))


def _rows(db: SiteDb) -> list[tuple[str, Assessment]]:
    with read_session(db.engine) as session:
        found = session.execute(
            select(Assessment)
            .join(Patient, col(Patient.id) == col(Assessment.patient_id))
            .where(col(Patient.study_id) == "ROM-101")
            .order_by(col(Assessment.due_on))
        ).scalars()
        return [(f"ROM-101:{r.infusion_number}:{r.assessment}:{r.occurrence}", r) for r in found]


def _row(db: SiteDb, key: str) -> Assessment:
    return dict(_rows(db))[key]


def _bookable(db: SiteDb) -> tuple[str, Assessment]:
    """A pending assessment whose window is still ahead, wider than one day."""
    return next(
        (key, row)
        for key, row in _rows(db)
        if row.status == "pending" and row.window_start > TODAY and row.window_end > row.due_on
    )


def _item(key: str) -> str:
    return f"{PAGE}/assessments/{quote(key, safe='')}"


class TestReasons:
    def test_every_row_says_why_its_date_and_its_window_in_days(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        row = _row(site_db, RCL_1)
        before, after = (row.due_on - row.window_start).days, (row.window_end - row.due_on).days
        page = pages.get(PAGE).text
        cell = page[page.index(f'id="a-{RCL_1}"') :]
        cell = cell[: cell.index("</tr>")]
        cause = row.reason.split(";")[0]
        assert "after infusion of 2024-01-31" in cause
        assert f'<span class="why">{cause}; window −{before}/+{after} days</span>' in cell
        item = pages.get(_item(RCL_1)).text
        assert "Why this date" in item
        assert f"window −{before}/+{after} days" in item

    def test_the_reason_reads_in_german(self, pages: TestClient, nurse: str) -> None:
        page = pages.get(PAGE, headers={"accept-language": "de"}).text
        assert "Zeitfenster −" in page
        assert (
            "Innerhalb des Zeitfensters verschieben"
            in pages.get(_item(_bookable_key(pages)), headers={"accept-language": "de"}).text
        )

    def test_the_engines_reason_reads_in_italian_and_german(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        """The stored reason is English ("month 3 after infusion of 2024-01-31"); an
        Italian or German reader reads it in their language, the date as the page writes
        dates; English stays as stored."""
        row = _row(site_db, RCL_1)
        assert row.reason.startswith("month 3 after infusion of 2024-01-31; ")
        window = f"−{(row.due_on - row.window_start).days}/+{(row.window_end - row.due_on).days}"
        page = pages.get(PAGE, headers={"accept-language": "it"}).text
        cell = page[page.index(f'id="a-{RCL_1}"') :]
        cell = cell[: cell.index("</tr>")]
        assert (
            f'<span class="why">mese 3 dopo l&#39;infusione del 31 gen 2024; '
            f"finestra {window} giorni</span>" in cell
        )
        assert "after infusion" not in page
        assert "before infusion" not in page
        assert "giorni prima dell&#39;infusione del 31 gen 2024" in page  # the baseline rows
        item = pages.get(_item(RCL_1), headers={"accept-language": "de"}).text
        assert "Monat 3 nach der Infusion vom 31. Jan. 2024; Zeitfenster " in item
        english = pages.get(_item(RCL_1), headers={"accept-language": "en"}).text
        assert "month 3 after infusion of 2024-01-31; window " in english


def _bookable_key(pages: TestClient) -> str:
    page = pages.get(PAGE).text
    upcoming = page[page.index('id="h-upcoming"') :]
    found = re.search(r'<tr class="state-upcoming" id="a-([^"]+)"', upcoming)
    assert found is not None
    return found.group(1)


class TestRecordFromThePatientPage:
    def test_completed_today_from_a_due_row_goes_back_to_the_patient(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        page = pages.get(PAGE).text
        row = page[page.index(f'id="a-{RCL_1}"') :]
        row = row[: row.index("</tr>")]
        assert f'action="/assessments/{quote(RCL_1)}/outcome"' in row
        assert '<input type="hidden" name="next" value="/patients/ROM-101">' in row
        assert f'href="{_item(RCL_1)}"' in row  # other outcome, or reschedule
        done = pages.post(
            f"/assessments/{RCL_1}/outcome",
            data={"csrf_token": nurse, "version": "1", "outcome": "completed", "quick": "1",
                  "next": PAGE},
        )  # fmt: skip
        assert (done.status_code, done.headers["location"]) == (303, PAGE)
        assert _row(site_db, RCL_1).status == "completed"
        assert "Recorded: ROM-101" in pages.get(PAGE).text

    def test_another_outcome_is_recorded_on_the_items_page_and_kept_when_refused(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        item = pages.get(_item(RCL_1))
        assert item.status_code == 200
        assert "Record what was done" in item.text
        assert 'name="result"' in item.text  # the typed result (a choice for the RCL)
        data = {"csrf_token": nurse, "version": "1", "outcome": "not_done", "on": "2026-11-20",
                "note": "kept as typed", "next": PAGE}  # fmt: skip
        refused = pages.post(f"/assessments/{RCL_1}/outcome", data=data)
        assert refused.status_code == 422
        assert "Record what was done" in refused.text  # the item's page, not the due list
        assert "kept as typed" in refused.text
        assert _row(site_db, RCL_1).status == "pending"
        saved = pages.post(f"/assessments/{RCL_1}/outcome", data={**data, "reason": "no sample"})
        assert (saved.status_code, saved.headers["location"]) == (303, PAGE)
        assert _row(site_db, RCL_1).status == "not_done"
        assert f'href="{_item(RCL_1)}">Correct' in pages.get(PAGE).text

    def test_another_sites_assessment_page_is_not_found(
        self, pages: TestClient, nurse: str
    ) -> None:
        assert (
            pages.get("/patients/ERL-101/assessments/ERL-101%3A1%3Arcl_test%3A1").status_code == 404
        )
        assert pages.get(f"/patients/ROM-999/assessments/{quote(RCL_1)}").status_code == 404


class TestReschedule:
    def test_a_day_inside_the_window_is_booked(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        key, row = _bookable(site_db)
        day = row.window_end
        page = pages.get(_item(key)).text
        assert f'min="{row.window_start}" max="{row.window_end}"' in page
        done = pages.post(
            f"/assessments/{key}/reschedule",
            data={"csrf_token": nurse, "version": str(row.version), "on": day.isoformat(),
                  "reason": "family holiday", "next": PAGE},
        )  # fmt: skip
        assert (done.status_code, done.headers["location"]) == (303, PAGE)
        assert _row(site_db, key).appointment_on == day
        after = pages.get(PAGE).text
        assert f"Booked: {key} on {day}." in after
        assert f'<span class="booked">booked for {day}</span>' in after

    def test_a_day_outside_the_window_is_refused_in_words(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        key, row = _bookable(site_db)
        day = row.window_end + timedelta(days=1)
        refused = pages.post(
            f"/assessments/{key}/reschedule",
            data={"csrf_token": nurse, "version": str(row.version), "on": day.isoformat(),
                  "reason": "kept", "next": PAGE},
        )  # fmt: skip
        assert refused.status_code == 422
        assert f"{day} is outside the window: only a day from" in refused.text
        assert 'aria-invalid="true"' in refused.text
        assert f'value="{day}"' in refused.text  # what was typed, kept
        assert _row(site_db, key).appointment_on is None
        german = pages.post(
            f"/assessments/{key}/reschedule",
            headers={"accept-language": "de"},
            data={"csrf_token": nurse, "version": str(row.version), "on": day.isoformat(),
                  "next": PAGE},
        )  # fmt: skip
        assert "liegt außerhalb des Zeitfensters" in german.text


def _marks(svg: str) -> list[tuple[str, str]]:
    return re.findall(
        r'<g class="m" tabindex="0" role="img" aria-label="[^"]*">'
        r'<use href="#tl\d-mk-\w+" x="([\d.]+)" y="([\d.]+)"/>',
        svg,
    )


class TestTimeline:
    def test_every_mark_is_focusable_with_its_details_and_none_share_a_place(
        self, pages: TestClient, nurse: str
    ) -> None:
        page = pages.get(PAGE).text
        svgs = re.findall(r"<svg viewBox=\"0 0 1000.*?</svg>", page, re.S)
        assert len(svgs) == 2
        for svg in svgs:
            marks = _marks(svg)
            assert marks
            assert len(marks) == svg.count('<g class="m" ')  # each mark is focusable
            assert len(set(marks)) == len(marks)  # none on top of another
            assert svg.count('<g class="tip">') == len(marks)  # each with its details
        assert 'aria-label="RCL' in page or "window" in svgs[0]

    def test_same_day_assessments_of_a_lane_are_one_mark_with_their_count(self) -> None:
        day = date(2025, 1, 31)
        items = [
            TimelineItem("labs", "completed", day, "a"),
            TimelineItem("labs", "overdue", day, "b"),
            TimelineItem("labs", "upcoming", day + timedelta(days=200), "c"),
            TimelineItem("imaging", "completed", day, "d"),
        ]
        t = build_timeline(
            items, lanes=["labs", "imaging"], start=date(2024, 1, 1), end=date(2027, 1, 1),
            today=date(2026, 1, 1), scale="years", anchor=date(2024, 1, 31),
        )  # fmt: skip
        assert sorted(m.count for m in t.markers) == [1, 1, 2]
        grouped = next(m for m in t.markers if m.count == 2)
        assert grouped.state == "overdue"  # what needs attention shows
        assert len({(m.x, m.y) for m in t.markers}) == len(t.markers)

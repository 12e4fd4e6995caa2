"""The site due list over HTTP: order, filters, keyset pages that cover every row once, CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from support.api_support import AAV, TODAY, Api

DUE = "/api/v1/sites/Rome/due"
ORDER = {"overdue": 0, "due": 1, "upcoming": 2}
# Rome patients infused at different times, so every state has rows; one Erlangen patient.
ROME = {
    "ROM-101": date(2024, 1, 31),
    "ROM-102": date(2025, 11, 2),
    "ROM-103": date(2026, 8, 14),
    "ROM-104": date(2026, 10, 30),
    "ROM-105": date(2022, 12, 5),
}


@pytest.fixture(scope="module")
def cohort(shared_api: Api) -> Api:
    """Read-only tests share one enrolled cohort per database."""
    api = shared_api
    for study_id, infused in ROME.items():
        api.enroll(study_id=study_id, infusion_date=infused)
    adult = {"protocol_id": AAV, "diagnosis": "hemophilia_b", "birth_date": date(1980, 1, 1)}
    api.enroll(study_id="ROM-201", infusion_date=date(2025, 3, 3), sex="M", **adult)
    api.enroll(study_id="ERL-101", site_id="Erlangen", infusion_date=date(2026, 10, 30))
    return api


def _expected(api: Api, on: date, start: date, end: date) -> set[tuple[str, str]]:
    """(key, state) of every row the list should show, worked out from the calendars."""
    rows: set[tuple[str, str]] = set()
    for study_id in [*ROME, "ROM-201"]:
        for row in api.get(f"/api/v1/patients/{study_id}/calendar", on=on.isoformat()).json():
            window = (
                date.fromisoformat(row["window_start"]),
                date.fromisoformat(row["window_end"]),
            )
            state = row["state"]
            overlaps = window[1] >= start and window[0] <= end
            if state == "overdue" or (state in ("due", "upcoming") and overlaps):
                rows.add((row["key"], state))
    return rows


def _sort_key(item: dict[str, Any]) -> tuple[int, str]:
    return ORDER[item["state"]], item[
        "window_start" if item["state"] == "upcoming" else "window_end"
    ]


def _all_pages(api: Api, limit: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        page = api.get(DUE, limit=limit, **params, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert len(body["items"]) == limit
    raise AssertionError("pagination did not end")


class TestOrderAndFilters:
    def test_overdue_first_then_due_then_upcoming_each_in_working_order(self, cohort: Api) -> None:
        items = cohort.get(DUE, limit=5000).json()["items"]
        assert [_sort_key(item) for item in items] == sorted(_sort_key(item) for item in items)
        assert {item["state"] for item in items} == {"overdue", "due", "upcoming"}
        overdue = [item for item in items if item["state"] == "overdue"]
        assert overdue[0]["days_overdue"] == max(item["days_overdue"] for item in overdue)

    def test_exactly_the_rows_the_calendars_say(self, cohort: Api) -> None:
        items = cohort.get(DUE, limit=5000).json()["items"]
        assert {(i["key"], i["state"]) for i in items} == _expected(
            cohort, TODAY, TODAY, TODAY + timedelta(30)
        )
        assert not any(item["study_id"].startswith("ERL") for item in items)

    def test_on_another_day(self, cohort: Api) -> None:
        on = date(2026, 3, 1)
        items = cohort.get(DUE, limit=5000, on=on.isoformat()).json()["items"]
        assert {(i["key"], i["state"]) for i in items} == _expected(
            cohort, on, on, on + timedelta(30)
        )

    def test_from_and_to_bound_the_due_and_upcoming_windows(self, cohort: Api) -> None:
        start, end = TODAY + timedelta(10), TODAY + timedelta(90)
        params = {"from": start.isoformat(), "to": end.isoformat()}
        items = cohort.get(DUE, limit=5000, **params).json()["items"]
        assert {(i["key"], i["state"]) for i in items} == _expected(cohort, TODAY, start, end)
        assert any(date.fromisoformat(i["window_start"]) > TODAY + timedelta(30) for i in items)

    @pytest.mark.parametrize(
        "states", [["overdue"], ["due"], ["upcoming"], ["overdue", "upcoming"]]
    )
    def test_status_filter(self, cohort: Api, states: list[str]) -> None:
        everything = cohort.get(DUE, limit=5000).json()["items"]
        items = cohort.get(DUE, limit=5000, status=states).json()["items"]
        assert items == [item for item in everything if item["state"] in states]

    def test_an_overdue_item_leaves_the_list_once_recorded(self, api: Api) -> None:
        api.enroll()
        first = api.get(DUE, limit=1).json()["items"][0]
        key = first["key"]
        version = api.get(f"/api/v1/assessments/{key}").headers["etag"]
        body = {"outcome": "completed", "date": first["window_end"]}
        assert (
            api.post(f"/api/v1/assessments/{key}/outcome", body, if_match=version).status_code
            == 200
        )
        assert key not in {item["key"] for item in api.get(DUE, limit=5000).json()["items"]}


class TestPages:
    @pytest.mark.parametrize("limit", [7, 50])
    def test_pages_cover_every_row_exactly_once_in_order(self, cohort: Api, limit: int) -> None:
        everything = cohort.get(DUE, limit=5000).json()["items"]
        assert len(everything) > 60
        paged = _all_pages(cohort, limit)
        assert [item["key"] for item in paged] == [item["key"] for item in everything]

    @pytest.mark.parametrize("limit", [1, 9])
    def test_pages_of_some_states_and_of_a_wider_range(self, cohort: Api, limit: int) -> None:
        params = {"status": ["due", "upcoming"], "to": (TODAY + timedelta(120)).isoformat()}
        everything = cohort.get(DUE, limit=5000, **params).json()["items"]
        assert [i["key"] for i in _all_pages(cohort, limit, **params)] == [
            i["key"] for i in everything
        ]

    def test_the_last_page_has_no_cursor(self, cohort: Api) -> None:
        count = len(cohort.get(DUE, limit=5000).json()["items"])
        assert cohort.get(DUE, limit=count).json()["next_cursor"] is None
        assert cohort.get(DUE, limit=count - 1).json()["next_cursor"] is not None

    def test_the_default_page_is_50(self, cohort: Api) -> None:
        body = cohort.get(DUE).json()
        assert len(body["items"]) == 50
        assert body["next_cursor"]


class TestCsv:
    def test_a_spreadsheet_with_a_header_and_every_row(self, cohort: Api) -> None:
        response = cohort.get(DUE, format="csv")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8; header=present"
        assert 'filename="due-Rome-2026-11-25.csv"' in response.headers["content-disposition"]
        assert response.text.startswith("\ufeffstate,days_overdue,study_id,site,")
        rows = list(csv.DictReader(io.StringIO(response.text.removeprefix("\ufeff"))))
        everything = cohort.get(DUE, limit=5000).json()["items"]
        assert [row["key"] for row in rows] == [item["key"] for item in everything]
        assert rows[0]["name"] == everything[0]["name"]
        assert rows[0]["due"] == everything[0]["due"]

    def test_limited_csv_says_where_to_continue(self, cohort: Api) -> None:
        response = cohort.get(DUE, format="csv", limit=3)
        assert len(response.text.strip().splitlines()) == 4
        assert response.headers["x-next-cursor"]


class TestBadInput:
    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"on": "2026-02-30"}, "query.on"),
            ({"from": "soon"}, "query.from"),
            ({"status": "late"}, "query.status.0"),
            ({"limit": 0}, "query.limit"),
            ({"limit": 100_000}, "query.limit"),
            ({"format": "xlsx"}, "query.format"),
        ],
    )
    def test_bad_parameters_are_named(
        self, cohort: Api, params: dict[str, Any], field: str
    ) -> None:
        response = cohort.get(DUE, **params)
        assert response.status_code == 422
        assert [error["field"] for error in response.json()["errors"]] == [field]

    def test_an_unknown_parameter_is_refused_not_ignored(self, cohort: Api) -> None:
        response = cohort.get(DUE, stauts="overdue")
        assert response.status_code == 422
        assert "stauts" in response.json()["detail"]

    @pytest.mark.parametrize("cursor", ["nonsense", "b3ZlcmR1ZQ", "!!!", "eHx5fHo", "ü"])
    def test_a_cursor_it_did_not_give_out_is_422(self, cohort: Api, cursor: str) -> None:
        response = cohort.get(DUE, cursor=cursor)
        assert response.status_code == 422
        assert "next_cursor" in response.json()["detail"]

    def test_from_after_to_is_422(self, cohort: Api) -> None:
        response = cohort.get(DUE, **{"from": "2026-12-31", "to": "2026-12-01"})
        assert response.status_code == 422
        assert "'from'" in response.json()["detail"]

    def test_an_unknown_site_is_404(self, cohort: Api) -> None:
        response = cohort.get("/api/v1/sites/Atlantis/due", role="admin")
        assert response.status_code == 404
        assert "Atlantis" in response.json()["detail"]


def test_the_json_due_list_carries_no_birth_or_infusion_date(cohort: Api) -> None:
    """Like the CSV and the calendar feed: a list of many patients leaves the page without
    the dates that identify them (the patient's own calendar keeps them)."""
    reasons = [item["reason"] for item in cohort.get(DUE, limit=5000).json()["items"]]
    assert reasons
    identifying = {"2014-03-01", "1980-01-01", *(d.isoformat() for d in ROME.values())}
    assert not [r for r in reasons if any(day in r for day in identifying)]
    own = cohort.get("/api/v1/patients/ROM-101/calendar").json()
    assert any("2024-01-31" in row["reason"] for row in own)  # the patient's own calendar


def test_the_page_is_read_without_a_transaction_on_postgresql(cohort: Api) -> None:
    """The page is one statement: on PostgreSQL it runs with no BEGIN and no ROLLBACK
    around it (``kit.db.statement_read_session``), two round trips fewer a request."""
    if cohort.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL transactions")
    autocommit: list[bool] = []

    def seen(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM assessments" in statement:
            autocommit.append(connection.connection.dbapi_connection.autocommit)

    event.listen(cohort.engine, "before_cursor_execute", seen)
    try:
        assert cohort.get(DUE).status_code == 200
    finally:
        event.remove(cohort.engine, "before_cursor_execute", seen)
    assert autocommit == [True]

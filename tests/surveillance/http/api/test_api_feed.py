"""The site calendar feed: valid iCalendar, stable UIDs, a token scoped to one site."""

from __future__ import annotations

from datetime import date, timedelta

import icalendar
import pytest
from support.api_support import TODAY, Api

FEED = "/api/v1/sites/{site}/calendar.ics"


def _feed(api: Api, site: str, token: str | None) -> icalendar.Calendar:
    response = api.client.get(FEED.format(site=site), params={"token": token} if token else {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    return icalendar.Calendar.from_ical(response.content)


@pytest.fixture
def patients(api: Api) -> Api:
    api.enroll()  # ROM-101, infused 2024-01-31
    api.enroll(study_id="ERL-101", site_id="Erlangen")
    return api


class TestFeed:
    def test_a_valid_calendar_of_the_sites_coming_assessments(self, patients: Api) -> None:
        calendar = _feed(patients, "Rome", patients.feed_token("nurse", "Rome"))
        events = list(calendar.walk("VEVENT"))
        assert events
        assert str(calendar["X-WR-CALNAME"]) == "Follow-up at Rome"
        for event in events:
            assert str(event["UID"]).startswith("ROM-101:1:")
            assert str(event["UID"]).endswith("@ltfu-surveillance")
            assert str(event["SUMMARY"]).removeprefix("Overdue: ").startswith("ROM-101: ")
            assert event.decoded("DTSTART") <= TODAY + timedelta(days=180)
        uids = [str(event["UID"]) for event in events]
        assert len(uids) == len(set(uids))

    def test_the_events_are_the_overdue_due_and_upcoming_rows(self, patients: Api) -> None:
        calendar = _feed(patients, "Rome", patients.feed_token("nurse", "Rome"))
        uids = {str(event["UID"]) for event in calendar.walk("VEVENT")}
        horizon = (TODAY + timedelta(days=180)).isoformat()
        due = patients.get(
            "/api/v1/sites/Rome/due",
            status=["overdue", "due", "upcoming"],
            to=horizon,
            limit=5000,
        )
        assert uids == {f"{item['key']}@ltfu-surveillance" for item in due.json()["items"]}

    def test_uids_are_stable_and_a_booking_moves_the_event(self, patients: Api) -> None:
        token = patients.feed_token("nurse", "Rome")
        key = "ROM-101:1:neurodevelopment:2"
        before = {str(e["UID"]): e for e in _feed(patients, "Rome", token).walk("VEVENT")}
        body = {"date": "2026-12-10"}
        assert (
            patients.post(f"/api/v1/assessments/{key}/reschedule", body, if_match='"1"').status_code
            == 200
        )
        after = {str(e["UID"]): e for e in _feed(patients, "Rome", token).walk("VEVENT")}
        uid = f"{key}@ltfu-surveillance"
        assert set(after) == set(before)
        assert before[uid].decoded("DTSTART") == date(2027, 1, 31)
        assert after[uid].decoded("DTSTART") == date(2026, 12, 10)

    def test_read_only(self, patients: Api) -> None:
        token = patients.feed_token("nurse", "Rome")
        response = patients.client.post(FEED.format(site="Rome"), params={"token": token})
        assert response.status_code == 405


class TestToken:
    def test_another_sites_feed_is_not_found(self, patients: Api) -> None:
        response = patients.client.get(
            FEED.format(site="Erlangen"), params={"token": patients.feed_token("nurse", "Rome")}
        )
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    def test_an_admin_feed_token_is_still_scoped_to_its_site(self, patients: Api) -> None:
        token = patients.feed_token("admin", "Erlangen")
        assert (
            patients.client.get(FEED.format(site="Rome"), params={"token": token}).status_code
            == 404
        )
        assert "ERL-101" in str(_feed(patients, "Erlangen", token).walk("VEVENT")[0]["SUMMARY"])

    def test_a_revoked_token_is_401(self, patients: Api) -> None:
        token = patients.feed_token("nurse", "Rome")
        _feed(patients, "Rome", token)
        patients.revoke(token)
        response = patients.client.get(FEED.format(site="Rome"), params={"token": token})
        assert response.status_code == 401
        assert response.json()["detail"] == "invalid or revoked token"

    @pytest.mark.parametrize("token", [None, "", "feed_not-a-token"])
    def test_no_or_an_unknown_token_is_401(self, patients: Api, token: str | None) -> None:
        params = {} if token is None else {"token": token}
        assert patients.client.get(FEED.format(site="Rome"), params=params).status_code == 401

    def test_an_api_token_is_not_a_feed_token(self, patients: Api) -> None:
        response = patients.client.get(
            FEED.format(site="Rome"), params={"token": patients.tokens["nurse"]}
        )
        assert response.status_code == 401

    def test_a_feed_token_is_not_an_api_token(self, patients: Api) -> None:
        token = patients.feed_token("nurse", "Rome")
        response = patients.client.get(
            "/api/v1/sites/Rome/due", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401

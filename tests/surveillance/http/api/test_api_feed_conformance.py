"""Issue 13: what integrators hit in the FHIR feed and the site iCalendar feed, each
defect with the test that would have caught it. The FHIR output is checked by two
independent R4 models (fhir.resources, SMART's fhirclient), the iCalendar feed by two
parsers (icalendar, ics)."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from csv import DictReader
from datetime import date, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import icalendar
import ics
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.structuredefinition import StructureDefinition
from fhirclient.models.bundle import Bundle as SmartBundle
from fhirclient.models.codesystem import CodeSystem as SmartCodeSystem
from fhirclient.models.structuredefinition import StructureDefinition as SmartStructureDefinition
from support.api_support import NOW, TODAY, Api, open_api

import rules
from surveillance.adverse_events.cases import add_follow_up, create_case
from surveillance.adverse_events.facts import CaseFacts
from surveillance.http import access_log
from surveillance.kit.db import write_session
from surveillance.patients.appointments import reschedule
from surveillance.patients.due_list import public_reason
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    Seriousness,
)

FEED = "/api/v1/feeds/adverse-events"
BASE = "https://ltfu.example.org"
SEPSIS = CaseFacts(
    onset_date=date(2024, 2, 2),
    awareness_date=date(2024, 2, 2),
    term="Sepsis",
    category=Category.infection,
    grade=4,
    grade_scale=GradeScale.ctcae_v5,
    serious=True,
    seriousness_criteria=(Seriousness.life_threatening,),
    relatedness=Relatedness.possibly_related,
    expected=False,
    outcome=CaseOutcome.recovering,
    meddra_code="10040047",
    meddra_version="27.1",
)


# -- FHIR feed ---------------------------------------------------------------------------


@pytest.fixture
def fhir_api(database_url: str, registry: rules.ProtocolRegistry) -> Iterator[Api]:
    """A configured public base URL, and one case with a follow-up (two versions)."""
    with open_api(database_url, registry, base_url=BASE, feed_min_poll_seconds=0) as api:
        api.enroll()
        with write_session(api.engine) as session:
            change = create_case(session, study_id="ROM-101", facts=SEPSIS, actor="t",
                                 registry=api.registry, now=NOW)  # fmt: skip
            add_follow_up(session, case_id=change.case.case_id, facts=SEPSIS, actor="t",
                          registry=api.registry, now=NOW, expected_version=1)  # fmt: skip
        yield api


def _bundle(api: Api, host: str | None = None, **params: Any) -> dict[str, Any]:
    headers = {**api.headers("pharmacovigilance"), "Accept": "application/fhir+json"}
    if host is not None:
        headers["Host"] = host
    response = api.client.get(FEED, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _validated(bundle: dict[str, Any]) -> dict[str, Any]:
    Bundle.model_validate(bundle)
    SmartBundle(bundle, strict=True)
    return bundle


def _urls(value: Any) -> Iterator[str]:
    """Every string under ``value`` that looks like an absolute http(s) URL."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from _urls(item)
    elif isinstance(value, str) and value.startswith(("http://", "https://")):
        yield value


def test_fhir_urls_come_from_the_configured_base_url_not_the_host_header(fhir_api: Api) -> None:
    plain = _validated(_bundle(fhir_api, limit=1))
    forged = _validated(_bundle(fhir_api, host="evil.example.com", limit=1))
    assert plain == forged
    theirs = ("hl7.org", "meddra.org", "unitsofmeasure.org")
    ours = [url for url in _urls(plain) if not any(other in url for other in theirs)]
    assert ours
    assert all(url.startswith(f"{BASE}/") for url in ours), ours
    links = {link["relation"]: link["url"] for link in plain["link"]}
    assert links["next"].startswith(f"{BASE}/api/v1/feeds/adverse-events?")
    assert "evil" not in str(forged)
    assert "testserver" not in str(plain)


def test_local_code_systems_and_definitions_are_served_at_their_urls(fhir_api: Api) -> None:
    bundle = _validated(_bundle(fhir_api))
    systems = {url for url in _urls(bundle) if "/fhir/CodeSystem/" in url}
    definitions = {url for url in _urls(bundle) if "/fhir/StructureDefinition/" in url}
    assert len(systems) >= 3
    assert len(definitions) >= 8
    codes = _codes_used(bundle)
    for url in sorted(systems | definitions):
        response = fhir_api.client.get(url.removeprefix(BASE))
        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith("application/fhir+json")
        resource = response.json()
        assert resource["url"] == url
        if resource["resourceType"] == "CodeSystem":
            CodeSystem.model_validate(resource)
            SmartCodeSystem(resource, strict=True)
            served = {concept["code"] for concept in resource["concept"]}
            assert codes[url] <= served, url  # every code the feed sends is defined
        else:
            StructureDefinition.model_validate(resource)
            SmartStructureDefinition(resource, strict=True)
            assert resource["type"] == "Extension"
    assert fhir_api.client.get("/fhir/CodeSystem/nope").status_code == 404


def _codes_used(value: Any, found: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    found = {} if found is None else found
    if isinstance(value, dict):
        if "system" in value and "code" in value:
            found.setdefault(value["system"], set()).add(value["code"])
        for item in value.values():
            _codes_used(item, found)
    elif isinstance(value, list):
        for item in value:
            _codes_used(item, found)
    return found


def test_meddra_is_coded_with_the_hl7_terminology_system(fhir_api: Api) -> None:
    bundle = _validated(_bundle(fhir_api))
    event = bundle["entry"][0]["resource"]["event"]
    assert event["coding"][0]["system"] == "https://www.meddra.org"
    assert "terminology.hl7.org/CodeSystem/mdr" not in str(bundle)


def test_a_history_is_newest_first_with_version_independent_full_urls(fhir_api: Api) -> None:
    """R4 http.html#history: newest first; Bundle.entry.fullUrl is [base]/AdverseEvent/[id]."""
    bundle = _validated(_bundle(fhir_api))
    versions = [int(entry["resource"]["meta"]["versionId"]) for entry in bundle["entry"]]
    assert versions == [2, 1]
    case_id = bundle["entry"][0]["resource"]["id"]
    assert {entry["fullUrl"] for entry in bundle["entry"]} == {
        f"{BASE}/fhir/AdverseEvent/{case_id}"
    }
    locations = [entry["response"]["location"] for entry in bundle["entry"]]
    assert locations == [f"AdverseEvent/{case_id}/_history/2", f"AdverseEvent/{case_id}/_history/1"]


def test_the_fhir_form_of_a_caught_up_page_is_not_paced_with_its_json_form(
    database_url: str, registry: rules.ProtocolRegistry
) -> None:
    with open_api(database_url, registry, feed_min_poll_seconds=5) as api:
        pv = api.headers("pharmacovigilance")
        assert api.client.get(FEED, headers=pv).status_code == 200
        fhir = api.client.get(FEED, headers={**pv, "Accept": "application/fhir+json"})
        assert fhir.status_code == 200, fhir.text
        assert api.client.get(FEED, params={"format": "fhir"}, headers=pv).status_code == 429
        assert api.client.get(FEED, headers=pv).status_code == 429  # each form is still paced


# -- iCalendar feed ----------------------------------------------------------------------

CALENDAR = "/api/v1/sites/Rome/calendar.ics"
BIRTH, INFUSION = "2014-03-01", "2024-01-31"  # the test patient's (support.api_support)
# Turns 18 within the feed's 180 days: a birthday-anchored row is in the feed.
TEEN_BIRTH = date(TODAY.year - 18, TODAY.month, 1) + timedelta(days=60)
BOOKED = "ROM-101:1:neurodevelopment:2"  # pending, due 2027-01-31 (test_api_feed.py)


@pytest.fixture
def calendar_api(api: Api) -> Api:
    api.enroll()  # ROM-101, born 2014-03-01, infused 2024-01-31
    api.enroll(study_id="ROM-102", birth_date=TEEN_BIRTH)
    return api


def _fetch(api: Api, token: str, **headers: str) -> httpx.Response:
    return api.client.get(CALENDAR, params={"token": token}, headers=headers)


def _both_parsers(body: bytes) -> tuple[dict[str, Any], dict[str, ics.Event]]:
    """The events by UID, as icalendar and as ics read them (both must accept the file)."""
    first = {str(e["UID"]): e for e in icalendar.Calendar.from_ical(body).walk("VEVENT")}
    second = {event.uid: event for event in ics.Calendar(body.decode()).events}
    assert set(first) == set(second)
    return first, second


def test_every_event_carries_sequence_last_modified_and_a_stable_dtstamp(
    calendar_api: Api,
) -> None:
    token = calendar_api.feed_token("nurse", "Rome")
    body = _fetch(calendar_api, token).content
    first, second = _both_parsers(body)
    assert first
    for uid, event in first.items():
        assert int(event["SEQUENCE"]) == 0
        modified = event.decoded("LAST-MODIFIED")
        assert event.decoded("DTSTAMP") == modified  # the row's revision, not the fetch
        assert second[uid].last_modified == modified
    assert _fetch(calendar_api, token).content == body  # the same rows: the same bytes


def test_a_reschedule_is_an_update_both_parsers_see(calendar_api: Api) -> None:
    api = calendar_api
    token = api.feed_token("nurse", "Rome")
    uid = f"{BOOKED}@ltfu-surveillance"
    before, before_ics = _both_parsers(_fetch(api, token).content)
    later = NOW + timedelta(hours=3)
    with write_session(api.engine) as session:
        reschedule(session, key=BOOKED, on=date(2026, 12, 10), reason=None, actor="t", now=later)
    after, after_ics = _both_parsers(_fetch(api, token).content)
    assert int(after[uid]["SEQUENCE"]) == int(before[uid]["SEQUENCE"]) + 1
    assert after[uid].decoded("LAST-MODIFIED") == later
    assert after[uid].decoded("DTSTAMP") == later
    assert after[uid].decoded("DTSTART") == date(2026, 12, 10)
    assert after_ics[uid].last_modified == later
    assert after_ics[uid].last_modified != before_ics[uid].last_modified
    assert "SEQUENCE:1" in after_ics[uid].serialize()  # ics keeps it as an extra property
    untouched = next(u for u in after if u != uid)
    assert after[untouched].to_ical() == before[untouched].to_ical()


def test_overdue_items_are_in_the_feed(calendar_api: Api) -> None:
    token = calendar_api.feed_token("nurse", "Rome")
    uids, _ = _both_parsers(_fetch(calendar_api, token).content)
    overdue = calendar_api.get("/api/v1/sites/Rome/due", status="overdue", limit=5000)
    keys = [item["key"] for item in overdue.json()["items"]]
    assert keys
    for key in keys:
        assert str(uids[f"{key}@ltfu-surveillance"]["SUMMARY"]).startswith("Overdue: ")


def test_a_completed_item_is_dropped_from_the_feed(calendar_api: Api) -> None:
    """The documented way: only pending assessments are published; a subscription mirrors
    the file, so the subscriber drops the event (no STATUS:CANCELLED for work done)."""
    api = calendar_api
    token = api.feed_token("nurse", "Rome")
    before, _ = _both_parsers(_fetch(api, token).content)
    key = next(uid for uid in before if "Overdue" in str(before[uid]["SUMMARY"]))
    key = key.removesuffix("@ltfu-surveillance")
    body = {"outcome": "completed", "date": TODAY.isoformat()}
    done = api.post(f"/api/v1/assessments/{key}/outcome", body, if_match=f'"{api.version(key)}"')
    assert done.status_code == 200, done.text
    after, _ = _both_parsers(_fetch(api, token).content)
    assert f"{key}@ltfu-surveillance" not in after
    assert {str(e.get("STATUS")) for e in after.values()} == {"CONFIRMED"}


def test_no_birth_or_infusion_dates_in_the_feed_or_the_due_list_csvs(calendar_api: Api) -> None:
    """The reason stays ("18th birthday"), its dates go. (A window that closes on the
    infusion day still shows as a window: that is the schedule itself.)"""
    api = calendar_api
    feed = _fetch(api, api.feed_token("nurse", "Rome")).content
    events, _ = _both_parsers(feed)
    reasons = [str(e["DESCRIPTION"]).split("\nWindow:")[0] for e in events.values()]
    assert any("birthday" in reason for reason in reasons)  # ROM-102 turns 18 in range
    horizon = (TODAY + timedelta(days=365 * 10)).isoformat()
    csv = api.get("/api/v1/sites/Rome/due", format="csv", to=horizon).text
    rows = list(DictReader(io.StringIO(csv.removeprefix("\ufeff"))))
    assert any("birthday" in row["reason"] for row in rows)
    for text in (feed.decode(), csv):
        for secret in (BIRTH, TEEN_BIRTH.isoformat(), "born"):
            assert secret not in text
    for reason in reasons + [row["reason"] for row in rows]:
        assert INFUSION not in reason
        unbooked = re.sub(r"^Booked for \d{4}-\d{2}-\d{2}\. ", "", reason)
        assert not re.search(r"\d{4}-\d{2}-\d{2}", unbooked)
    assert public_reason("18th birthday (born 2008-11-29)") == "18th birthday"
    assert public_reason("Month 12 after infusion of 2024-01-31") == "Month 12 after infusion"
    assert public_reason("6 months after birth on 2014-03-01") == "6 months after birth"


def test_the_cli_due_list_csv_has_no_identifying_dates(calendar_api: Api) -> None:
    from typer.testing import CliRunner

    from surveillance.cli import app as cli_app

    url = calendar_api.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli_app,
        ["due", "--site", "Rome", "--on", TODAY.isoformat(), "--format", "csv", "--horizon", "366"],
        env={"SURVEILLANCE_DATABASE_URL": url},
    )
    assert result.exit_code == 0, result.output
    rows = list(DictReader(io.StringIO(result.output.removeprefix("\ufeff"))))
    assert any("birthday" in row["reason"] for row in rows)
    for secret in (BIRTH, TEEN_BIRTH.isoformat(), "born"):
        assert secret not in result.output
    assert not [row for row in rows if re.search(r"\d{4}-\d{2}-\d{2}", row["reason"])]


def test_the_feed_token_never_reaches_the_access_log(
    calendar_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    token = calendar_api.feed_token("nurse", "Rome")
    logger = logging.getLogger(access_log.ACCESS_LOGGER)
    assert any(isinstance(f, access_log.RedactTokens) for f in logger.filters)  # create_app
    with caplog.at_level(logging.INFO, logger=access_log.ACCESS_LOGGER):
        # Exactly what uvicorn's httptools/h11 protocols log for a request.
        path = f"{CALENDAR}?token={token}&x=1"
        logger.info('%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "GET", path, "1.1", 200)
    assert token not in caplog.text
    assert f"{CALENDAR}?token=[redacted]&x=1" in caplog.text


def test_head_is_answered_without_a_body(calendar_api: Api) -> None:
    token = calendar_api.feed_token("nurse", "Rome")
    get = _fetch(calendar_api, token)
    head = calendar_api.client.head(CALENDAR, params={"token": token})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Last-Modified"] == get.headers["Last-Modified"]
    assert head.headers["content-type"] == "text/calendar; charset=utf-8"


def test_etag_and_last_modified_give_a_304_until_something_changes(calendar_api: Api) -> None:
    api = calendar_api
    token = api.feed_token("nurse", "Rome")
    first = _fetch(api, token)
    tag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert _fetch(api, token, **{"If-None-Match": tag}).status_code == 304
    unchanged = _fetch(api, token, **{"If-Modified-Since": modified})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    with write_session(api.engine) as session:
        reschedule(session, key=BOOKED, on=date(2026, 12, 10), reason=None, actor="t",
                   now=NOW + timedelta(hours=1))  # fmt: skip
    changed = _fetch(api, token, **{"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != tag
    assert _fetch(api, token, **{"If-Modified-Since": modified}).status_code == 200
    later = format_datetime(NOW + timedelta(days=1), usegmt=True)
    assert _fetch(api, token, **{"If-Modified-Since": later}).status_code == 304

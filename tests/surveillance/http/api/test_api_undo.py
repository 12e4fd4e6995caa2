"""Undoing a recording over HTTP: POST /assessments/{key}/undo with If-Match; 409 with
the rule when it is not the caller's or too old; the calendar change like a recording's."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col
from support.api_support import NOW, USERS, Api

from surveillance.adverse_events.results import record_outcome
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.records.patients import OutcomeRecord

# ROM-101, infused 2024-01-31: the first-year RCL tests at months 3, 6 and 12.
RCL = ["ROM-101:1:rcl_test:1", "ROM-101:1:rcl_test:2", "ROM-101:1:rcl_test:3"]
RULE = "only its author can undo it, within 15 minutes; after that, correct it with a reason"


def _path(key: str, action: str) -> str:
    return f"/api/v1/assessments/{key}/{action}"


def _recorded(api: Api, key: str, result: str, on: str, role: str = "nurse") -> str:
    """Record through the API as ``role``; the new ETag."""
    response = api.post(
        _path(key, "outcome"),
        {"outcome": "completed", "date": on, "result": result},
        role=role,
        if_match=f'"{api.version(key)}"',
    )
    assert response.status_code == 200, response.text
    return response.headers["etag"]


def _history(api: Api) -> tuple[int, int]:
    with read_session(api.engine) as session:
        outcomes = len(session.execute(select(col(OutcomeRecord.id))).all())
        audits = len(session.execute(select(col(AuditEntry.id))).all())
    return outcomes, audits


@pytest.fixture
def patient(api: Api) -> str:
    return api.enroll()


@pytest.mark.parametrize("role", ["nurse", "investigator", "admin"])
def test_the_author_undoes_it_and_the_calendar_follows(api: Api, patient: str, role: str) -> None:
    _recorded(api, RCL[0], "negative", "2024-04-30", role)
    _recorded(api, RCL[1], "negative", "2024-07-31", role)
    tag = _recorded(api, RCL[2], "negative", "2025-01-31", role)
    before = _history(api)

    response = api.post(_path(RCL[2], "undo"), {}, role=role, if_match=tag)

    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"3"'
    body: dict[str, Any] = response.json()
    assessment = body["assessment"]
    assert (assessment["status"], assessment["performed_on"], assessment["result"]) == (
        "pending",
        None,
        None,
    )
    assert assessment["version"] == 3
    # The third negative had stopped the yearly tests and started archive-only samples.
    reinstated = {row["key"].rsplit(":", 1)[0] for row in body["change"]["reinstated"]}
    cancelled = {row["key"].rsplit(":", 1)[0] for row in body["change"]["cancelled"]}
    assert reinstated == {"ROM-101:1:rcl_yearly_test"}
    assert cancelled == {"ROM-101:1:rcl_archive"}
    outcomes, audits = _history(api)
    assert outcomes == before[0] + 1  # one more version: the recording stays
    trail = api.get(f"/api/v1/patients/{patient}/audit", role=role).json()
    undo = [entry for entry in trail if entry["action"] == "undo_outcome"]
    assert len(undo) == 1
    assert (undo[0]["actor"], undo[0]["key"], undo[0]["old"]["result"]) == (
        USERS[role][0],
        RCL[2],
        "negative",
    )
    assert audits == before[1] + 2  # the undo and the calendar change


def _record_as(api: Api, key: str, email: str, at_minutes_ago: float, result: str) -> None:
    """A recording made earlier than the API's clock (NOW) by ``email``, through the service."""
    with write_session(api.engine) as session:
        record_outcome(
            session,
            key=key,
            outcome="completed",
            on=date(2024, 4, 30),
            result=result,
            actor=email,
            registry=api.registry,
            now=NOW - timedelta(minutes=at_minutes_ago),
        )


@pytest.mark.parametrize(
    ("minutes_ago", "status"), [(14 + 59 / 60, 200), (15, 409), (15 + 1 / 60, 409), (60, 409)]
)
def test_only_within_15_minutes(api: Api, patient: str, minutes_ago: float, status: int) -> None:
    _record_as(api, RCL[0], USERS["nurse"][0], minutes_ago, "negative")
    response = api.post(_path(RCL[0], "undo"), {}, if_match='"2"')
    assert response.status_code == status, response.text
    if status == 409:
        assert RULE in response.json()["detail"]
        assert api.version(RCL[0]) == 2


def test_someone_else_gets_409_with_the_rule(api: Api, patient: str) -> None:
    tag = _recorded(api, RCL[0], "negative", "2024-04-30", "nurse")
    before = _history(api)
    response = api.post(_path(RCL[0], "undo"), {}, role="investigator", if_match=tag)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == f"{RCL[0]} was recorded by nurse@rome.example: {RULE}"
    assert _history(api) == before


def test_twice_is_409_and_a_safety_case_is_409(api: Api, patient: str) -> None:
    tag = _recorded(api, RCL[0], "negative", "2024-04-30")
    assert api.post(_path(RCL[0], "undo"), {}, if_match=tag).status_code == 200
    again = api.post(_path(RCL[0], "undo"), {}, if_match='"3"')
    assert again.status_code == 409
    assert "there is no recording to undo" in again.json()["detail"]

    tag = _recorded(api, RCL[0], "positive", "2024-04-30")  # recorded again: a positive
    positive = api.post(_path(RCL[0], "undo"), {}, if_match=tag)
    assert positive.status_code == 409
    assert "opened safety case ROM-101-AE01" in positive.json()["detail"]


def test_if_match_is_required_and_a_stale_one_is_412(api: Api, patient: str) -> None:
    _recorded(api, RCL[0], "negative", "2024-04-30")
    before = _history(api)
    assert api.post(_path(RCL[0], "undo"), {}).status_code == 428
    stale = api.post(_path(RCL[0], "undo"), {}, if_match='"1"')
    assert stale.status_code == 412
    assert _history(api) == before
    assert api.version(RCL[0]) == 2


def test_pharmacovigilance_may_not_undo(api: Api, patient: str) -> None:
    _recorded(api, RCL[0], "negative", "2024-04-30")
    response = api.post(_path(RCL[0], "undo"), {}, role="pharmacovigilance", if_match='"2"')
    assert response.status_code == 403

"""Who may do what: every API endpoint x every role x own site / other site, exact status.

The policy, as a table a reader can check:
* nurse and investigator work at Rome ("own"); Erlangen is "other". Another site's
  patient, assessment, list or feed is 404, as if it did not exist (no leak).
* only investigator and admin change a patient's status (a nurse gets 403 at any site:
  the role is checked before the patient is looked up).
* pharmacovigilance reads pseudonymous safety data only: 403 on clinical endpoints; it
  may read protocols and the list of sites. A patient's URLs are 404 to it, exactly as
  for a study id that does not exist (no oracle for which study ids exist).
* only admins manage users (here an unknown one: 404).
* admin may do everything everywhere; without a token everything but /healthz is 401.
* the calendar feed is authenticated by a feed token in the URL, scoped to the one site
  it was made for (even an admin's); pharmacovigilance cannot have one, so it tries its
  API token, which is not a feed token (401).

Each cell enrols its own fresh patient at the site it targets, so the writes of one cell
(an outcome, a withdrawal) never change what another cell sees.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from support.api_support import CAR_T, NOW, Api

from surveillance.adverse_events.cases import create_case
from surveillance.adverse_events.facts import CaseFacts
from surveillance.kit.db import write_session
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
)

ROLES: tuple[str | None, ...] = ("nurse", "investigator", "pharmacovigilance", "admin", None)

# Expected status per role, as "own site/other site". Paths are under /api/v1 (but /healthz).
# fmt: off
EXPECTED: dict[str, tuple[str, str, str, str, str]] = {
    #                                     nurse      investig.  pharmacov. admin      no token
    "GET /healthz":                     ("200/200", "200/200", "200/200", "200/200", "200/200"),
    "GET /protocols":                   ("200/200", "200/200", "200/200", "200/200", "401/401"),
    "GET /protocols/{protocol}":        ("200/200", "200/200", "200/200", "200/200", "401/401"),
    "GET /protocols/{protocol}?format=fhir":
                                        ("200/200", "200/200", "200/200", "200/200", "401/401"),
    "GET /protocols/{protocol}/calendar":
                                        ("200/200", "200/200", "200/200", "200/200", "401/401"),
    "GET /sites":                       ("200/200", "200/200", "200/200", "200/200", "401/401"),
    "GET /sites/{site}/due":            ("200/404", "200/404", "403/403", "200/200", "401/401"),
    "GET /sites/{site}/due?format=csv": ("200/404", "200/404", "403/403", "200/200", "401/401"),
    "GET /sites/{site}/calendar.ics":   ("200/404", "200/404", "401/401", "200/404", "401/401"),
    "HEAD /sites/{site}/calendar.ics":  ("200/404", "200/404", "401/401", "200/404", "401/401"),
    "GET /sites/{site}/results-to-review":
                                        ("200/404", "200/404", "403/403", "200/200", "401/401"),
    "POST /patients":                   ("201/404", "201/404", "403/403", "201/201", "401/401"),
    "GET /patients?site={site}":        ("200/404", "200/404", "403/403", "200/200", "401/401"),
    "GET /patients/{patient}":          ("200/404", "200/404", "404/404", "200/200", "401/401"),
    "GET /patients/{patient}/calendar": ("200/404", "200/404", "404/404", "200/200", "401/401"),
    "GET /patients/{patient}/calendar?format=fhir":
                                        ("200/404", "200/404", "404/404", "200/200", "401/401"),
    "GET /patients/{patient}/audit":    ("200/404", "200/404", "403/403", "200/200", "401/401"),
    "POST /patients/{patient}/infusions":
                                        ("200/404", "200/404", "404/404", "200/200", "401/401"),
    "POST /patients/{patient}/status":  ("403/403", "200/404", "403/403", "200/200", "401/401"),
    "GET /assessments/{patient}:1:rcl_test:1":
                                        ("200/404", "200/404", "403/403", "200/200", "401/401"),
    "POST /assessments/{patient}:1:rcl_test:1/outcome":
                                        ("200/404", "200/404", "403/403", "200/200", "401/401"),
    "POST /assessments/{patient}:1:neurodevelopment:2/reschedule":
                                        ("200/404", "200/404", "403/403", "200/200", "401/401"),
    # A fresh record has nothing recorded to correct (409) where the caller may correct.
    "POST /assessments/{patient}:1:rcl_test:1/corrections":
                                        ("409/404", "409/404", "403/403", "409/409", "401/401"),
    # Previews answer as the save they preview would (and save nothing).
    "POST /assessments/{patient}:1:rcl_test:1/outcome/preview":
                                        ("200/404", "200/404", "403/403", "200/200", "401/401"),
    "POST /assessments/{patient}:1:rcl_test:1/corrections/preview":
                                        ("409/404", "409/404", "403/403", "409/409", "401/401"),
    # Undo: likewise nothing recorded to undo (409) where the caller may undo.
    "POST /assessments/{patient}:1:rcl_test:1/undo":
                                        ("409/404", "409/404", "403/403", "409/409", "401/401"),
    # Alerting: investigators acknowledge escalations; alerts and webhooks are admins' only
    # (their ids are not per site; an unknown one is 404 to an admin).
    "POST /assessments/{patient}:1:rcl_test:1/acknowledge":
                                        ("403/403", "200/404", "403/403", "200/200", "401/401"),
    "GET /alerts":                      ("403/403", "403/403", "403/403", "200/200", "401/401"),
    "GET /alerts/{alert}":              ("403/403", "403/403", "403/403", "404/404", "401/401"),
    "POST /alerts/{alert}/retry":       ("403/403", "403/403", "403/403", "404/404", "401/401"),
    "GET /webhooks":                    ("403/403", "403/403", "403/403", "200/200", "401/401"),
    "POST /webhooks":                   ("403/403", "403/403", "403/403", "201/201", "401/401"),
    "GET /webhooks/{webhook}":          ("403/403", "403/403", "403/403", "404/404", "401/401"),
    "POST /webhooks/{webhook}/enable":  ("403/403", "403/403", "403/403", "404/404", "401/401"),
    "POST /webhooks/{webhook}/disable": ("403/403", "403/403", "403/403", "404/404", "401/401"),
    "POST /webhooks/{webhook}/rotate-secret":
                                        ("403/403", "403/403", "403/403", "404/404", "401/401"),
    "POST /webhooks/{webhook}/replay":  ("403/403", "403/403", "403/403", "404/404", "401/401"),
    "GET /users":                       ("403/403", "403/403", "403/403", "200/200", "401/401"),
    "POST /users/{user}/deactivate":    ("403/403", "403/403", "403/403", "404/404", "401/401"),
    "POST /users/{user}/reactivate":    ("403/403", "403/403", "403/403", "404/404", "401/401"),
    # Adverse events: the patient's site writes; pharmacovigilance reads a case (it is
    # pseudonymous) and pulls the feed, but records nothing clinical.
    "POST /patients/{patient}/adverse-events":
                                        ("201/404", "201/404", "404/404", "201/201", "401/401"),
    "GET /patients/{patient}/adverse-events":
                                        ("200/404", "200/404", "404/404", "200/200", "401/401"),
    "GET /adverse-events?site={site}":  ("200/404", "200/404", "403/403", "200/200", "401/401"),
    "GET /adverse-events/{case}":       ("200/404", "200/404", "200/200", "200/200", "401/401"),
    "POST /adverse-events/{case}/versions":
                                        ("201/404", "201/404", "403/403", "201/201", "401/401"),
    "POST /adverse-events/{case}/nullify":
                                        ("200/404", "200/404", "403/403", "200/200", "401/401"),
    # The feed is for safety systems (and admins); every cell asks its own cursor.
    "GET /feeds/adverse-events?cursor={n}":
                                        ("403/403", "403/403", "200/200", "200/200", "401/401"),
    "POST /feeds/adverse-events/acks":  ("403/403", "403/403", "201/201", "403/403", "401/401"),
}
# fmt: on

MATRIX_CASE: dict[str, Any] = {
    "onset_date": "2026-11-01",
    "awareness_date": "2026-11-02",
    "term": "Cytokine release syndrome",
    "category": "crs",
    "grade": 1,
    "grade_scale": "astct",
    "serious": False,
    "relatedness": "related",
    "expected": True,
    "outcome": "recovering",
}

# What each write sends: a valid body (If-Match "1": the version of a fresh record).
BODIES: dict[str, dict[str, Any]] = {
    "POST /patients": {
        "site": "{site}",
        "birth_date": "2014-03-01",
        "sex": "F",
        "diagnosis": "sle",
        "protocol": CAR_T,
        "infusion_date": "2024-01-31",
    },
    "POST /patients/{patient}/infusions": {"infusion_date": "2026-06-01"},
    "POST /patients/{patient}/status": {
        "status": "withdrawn",
        "date": "2026-11-20",
        "reason": "matrix",
    },
    "POST /assessments/{patient}:1:rcl_test:1/outcome": {
        "outcome": "completed",
        "date": "2024-04-30",
    },
    "POST /assessments/{patient}:1:neurodevelopment:2/reschedule": {"date": "2026-12-10"},
    "POST /assessments/{patient}:1:rcl_test:1/corrections": {
        "result": "positive",
        "reason": "transcription error",
    },
    "POST /assessments/{patient}:1:rcl_test:1/outcome/preview": {
        "outcome": "completed",
        "date": "2024-04-30",
    },
    "POST /assessments/{patient}:1:rcl_test:1/corrections/preview": {
        "result": "positive",
        "reason": "transcription error",
    },
    "POST /assessments/{patient}:1:rcl_test:1/acknowledge": {"level": 2, "note": "matrix"},
    "POST /webhooks": {
        "url": "https://93.184.216.34/matrix",  # a global address, never contacted
        "events": ["assessment.overdue"],
        "site": "{site}",
    },
    "POST /webhooks/{webhook}/replay": {"since": "2026-01-01T00:00:00Z"},
    "POST /patients/{patient}/adverse-events": MATRIX_CASE,
    "POST /adverse-events/{case}/versions": {**MATRIX_CASE, "outcome": "recovered"},
    "POST /adverse-events/{case}/nullify": {"reason": "matrix"},
    "POST /feeds/adverse-events/acks": {"case_id": "{case}", "version": 1, "status": "AA"},
}

_numbers = itertools.count(1)


def _cells() -> Iterator[Any]:
    for endpoint, row in EXPECTED.items():
        for role, cell in zip(ROLES, row, strict=True):
            own, other = (int(status) for status in cell.split("/"))
            who = role or "no token"
            yield pytest.param(endpoint, role, "Rome", own, id=f"{endpoint} | {who} | own site")
            yield pytest.param(
                endpoint, role, "Erlangen", other, id=f"{endpoint} | {who} | other site"
            )


@pytest.fixture(scope="module")
def feeds(shared_api: Api) -> dict[str | None, str | None]:
    """The token each role puts in a feed URL: a Rome feed token if it can have one."""
    tokens: dict[str | None, str | None] = {
        role: shared_api.feed_token(role, "Rome") for role in ("nurse", "investigator", "admin")
    }
    tokens["pharmacovigilance"] = shared_api.tokens["pharmacovigilance"]  # no feed token possible
    tokens[None] = None
    return tokens


def _request(
    api: Api, endpoint: str, role: str | None, site: str, feed: str | None
) -> httpx.Response:
    """Send ``endpoint`` about a patient enrolled just now at ``site``, as ``role``."""
    number = next(_numbers)
    patient = api.enroll(study_id=f"{site[:3].upper()}-M{number:04d}", site_id=site)
    names = {
        "site": site,
        "patient": patient,
        "protocol": CAR_T,
        "alert": "no:such:alert",
        "webhook": "wh_none",
        "user": "nobody@example.org",
        "n": str(number),
        "case": _case_of(api, patient) if "{case}" in endpoint or "acks" in endpoint else "",
    }
    method, template = endpoint.split(" ", 1)
    prefix = "" if template == "/healthz" else "/api/v1"
    url, _, query = (prefix + template.format(**names)).partition("?")
    params = dict(parse_qsl(query))
    if url.endswith("/calendar.ics"):
        params.update({"token": feed} if feed else {})
        role = None  # a calendar app sends no Authorization header
    if url.endswith("/calendar") and "/protocols/" in url:
        params["infusion"] = "2024-01-31"
    body = {
        key: value.format(**names) if isinstance(value, str) else value
        for key, value in BODIES.get(endpoint, {}).items()
    }
    if endpoint == "POST /patients":
        body["study_id"] = f"{site[:3].upper()}-N{number:04d}"
    bodiless_update = endpoint.endswith("/undo")  # an update with If-Match and no body
    headers = api.headers(role, '"1"' if body or bodiless_update else None)
    return api.client.request(method, url, params=params, json=body or None, headers=headers)


def _case_of(api: Api, study_id: str) -> str:
    """A fresh case (version 1) for the cell's patient, recorded through the service."""
    facts = CaseFacts(
        onset_date=date(2026, 11, 1),
        awareness_date=date(2026, 11, 2),
        term="Cytokine release syndrome",
        category=Category.crs,
        grade=1,
        grade_scale=GradeScale.astct,
        serious=False,
        relatedness=Relatedness.related,
        expected=True,
        outcome=CaseOutcome.recovering,
    )
    with write_session(api.engine) as session:
        change = create_case(
            session, study_id=study_id, facts=facts, actor="test", registry=api.registry, now=NOW
        )
    return change.case.case_id


@pytest.mark.parametrize(("endpoint", "role", "site", "status"), list(_cells()))
def test_status(
    shared_api: Api,
    feeds: dict[str | None, str | None],
    endpoint: str,
    role: str | None,
    site: str,
    status: int,
) -> None:
    response = _request(shared_api, endpoint, role, site, feeds[role])
    assert response.status_code == status, response.text[:300]
    if status >= 400:
        assert response.headers["content-type"] == "application/problem+json"


def test_the_table_lists_every_api_endpoint(shared_api: Api) -> None:
    """A new API route without a row here fails: the matrix cannot silently fall behind."""
    renamed = {
        "{patient}:1:rcl_test:1": "{key}",
        "{patient}:1:neurodevelopment:2": "{key}",
        "{patient}": "{study_id}",
        "{protocol}": "{protocol_id}",
        "{alert}": "{alert_id}",
        "{webhook}": "{endpoint_id}",
        "{case}": "{case_id}",
        "{user}": "{email}",
    }
    listed = set()
    for endpoint in EXPECTED:
        method, path = endpoint.split(" ", 1)
        for ours, theirs in renamed.items():
            path = path.replace(ours, theirs)
        listed.add((method, ("" if path == "/healthz" else "/api/v1") + path.split("?")[0]))
    paths = shared_api.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    served = {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/api/") or path == "/healthz"
        for method in operations
    }
    assert served == listed

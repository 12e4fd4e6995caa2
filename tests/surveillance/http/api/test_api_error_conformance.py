"""Issue 13, "OpenAPI and errors": what the server sends is what the document says. Each
refusal it can make is declared on the operation that makes it, as a problem; If-Match is
required exactly where the document says so; every moment is an RFC 3339 date-time with
its offset. (The document's own validity, its problem schema and its security schemes:
test_api_openapi_document.py; a generated client and schemathesis on a live server:
test_api_generated_client.py, test_api_schemathesis.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from openapi_schema_validator import OAS30Validator
from support.api_support import NOW, PATIENT, TODAY, Api
from support.live_api import SERIOUS_CASE

from surveillance.alerting.scan import scan
from surveillance.http.downloads import attachment
from surveillance.kit.db import write_session
from surveillance.records import sites

KEY = "ROM-101:1:rcl_test:1"  # pending, positive/negative result (test_api_previews.py)
CASE = "ROM-101-AE01"
POSITIVE = {"outcome": "completed", "date": "2024-04-30", "result": "positive"}
INFUSION = {"infusion_date": "2026-01-01"}
WITHDRAWN = {"status": "withdrawn", "date": "2026-11-20", "reason": "moved"}
ENROLMENT = {
    **{k: str(v) for k, v in PATIENT.items() if k not in ("site_id", "protocol_id")},
    "site": PATIENT["site_id"],
    "protocol": PATIENT["protocol_id"],
}


@pytest.fixture
def patient(api: Api) -> Api:
    """ROM-101 enrolled, with one serious case (ROM-101-AE01) recorded over the API."""
    api.enroll()
    created = api.post(f"/api/v1/patients/{PATIENT['study_id']}/adverse-events", SERIOUS_CASE)
    assert created.status_code == 201, created.text
    assert created.json()["case_id"] == CASE
    return api


def _document(api: Api) -> dict[str, Any]:
    document: dict[str, Any] = api.client.get("/openapi.json").json()
    return document


def _template(document: dict[str, Any], path: str) -> str:
    """The document's path template that ``path`` is an instance of (exactly one)."""
    found = [
        template
        for template in document["paths"]
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path)
    ]
    assert len(found) == 1, (path, found)
    return found[0]


# (what is refused, method, path, role, body, If-Match): each a refusal the server makes.
REFUSALS: list[tuple[int, str, str, str | None, dict[str, Any] | None, str | None]] = [
    (401, "get", "/api/v1/patients", None, None, None),
    (403, "get", "/api/v1/alerts", "nurse", None, None),
    (403, "post", "/api/v1/patients/ROM-101/status", "nurse", WITHDRAWN, '"1"'),
    (404, "get", "/api/v1/patients/NOBODY-1", "nurse", None, None),
    (404, "get", "/api/v1/adverse-events/NOBODY-1-AE01", "nurse", None, None),
    (409, "post", "/api/v1/patients", "nurse", ENROLMENT, None),  # already enrolled
    (412, "post", "/api/v1/patients/ROM-101/infusions", "nurse", INFUSION, '"99"'),
    (412, "post", f"/api/v1/assessments/{KEY}/outcome", "nurse", POSITIVE, '"7"'),
    (422, "get", "/api/v1/patients?limit=0", "nurse", None, None),
    (422, "post", "/api/v1/patients/ROM-101/infusions", "nurse", {"infusion_date": "x"}, '"1"'),
    (428, "post", "/api/v1/patients/ROM-101/infusions", "nurse", INFUSION, None),
    (428, "post", f"/api/v1/adverse-events/{CASE}/nullify", "nurse", {"reason": "dup"}, None),
]


def test_every_refusal_is_a_problem_its_operation_declares(patient: Api) -> None:
    """Before issue 13 each operation declared FastAPI's 422 and nothing else."""
    api = patient
    document = _document(api)
    problem = OAS30Validator(document["components"]["schemas"]["Problem"])
    sent: list[tuple[int, str, str]] = []
    for status, method, path, role, body, if_match in REFUSALS:
        headers = api.headers(role, if_match)
        response = api.client.request(method, path, json=body, headers=headers)
        assert response.status_code == status, (method, path, response.text)
        operation = document["paths"][_template(document, path.split("?")[0])][method]
        declared = operation["responses"].get(str(status))
        assert declared is not None, f"{method} {path}: {status} sent, not declared"
        assert "application/problem+json" in declared["content"], (method, path, status)
        assert response.headers["content-type"] == "application/problem+json"
        problem.validate(response.json())
        assert response.json()["status"] == status
        sent.append((status, method, path))
    # The feed paces a consumer that has every entry: 429, declared, with Retry-After.
    feed = "/api/v1/feeds/adverse-events"
    assert api.get(feed, "pharmacovigilance").status_code == 200
    paced = api.get(feed, "pharmacovigilance")
    assert paced.status_code == 429
    assert int(paced.headers["Retry-After"]) >= 1
    problem.validate(paced.json())
    assert "429" in document["paths"][feed]["get"]["responses"]
    assert {status for status, _, _ in sent} | {429} == {401, 403, 404, 409, 412, 422, 428, 429}


# Every operation that reads If-Match, with a body the schema accepts: its path and body.
IF_MATCH: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("/api/v1/patients/{study_id}/infusions", "post"): (
        "/api/v1/patients/ROM-101/infusions",
        INFUSION,
    ),
    ("/api/v1/patients/{study_id}/status", "post"): ("/api/v1/patients/ROM-101/status", WITHDRAWN),
    ("/api/v1/assessments/{key}/outcome", "post"): (f"/api/v1/assessments/{KEY}/outcome", POSITIVE),
    ("/api/v1/assessments/{key}/corrections", "post"): (
        f"/api/v1/assessments/{KEY}/corrections",
        {"result": "negative", "reason": "re-read"},
    ),
    ("/api/v1/assessments/{key}/undo", "post"): (f"/api/v1/assessments/{KEY}/undo", None),
    ("/api/v1/assessments/{key}/reschedule", "post"): (
        f"/api/v1/assessments/{KEY}/reschedule",
        {"date": "2026-12-10"},
    ),
    ("/api/v1/adverse-events/{case_id}/versions", "post"): (
        f"/api/v1/adverse-events/{CASE}/versions",
        {**SERIOUS_CASE, "outcome": "recovered", "end_date": "2026-11-24"},
    ),
    ("/api/v1/adverse-events/{case_id}/nullify", "post"): (
        f"/api/v1/adverse-events/{CASE}/nullify",
        {"reason": "duplicate"},
    ),
    ("/api/v1/assessments/{key}/outcome/preview", "post"): (
        f"/api/v1/assessments/{KEY}/outcome/preview",
        POSITIVE,
    ),
    ("/api/v1/assessments/{key}/corrections/preview", "post"): (
        f"/api/v1/assessments/{KEY}/corrections/preview",
        {"result": "negative", "reason": "re-read"},
    ),
}


def test_if_match_is_required_exactly_where_the_document_says(patient: Api) -> None:
    """Sent without If-Match: 428 where the document marks it required, accepted where it
    does not (schemathesis found it documented optional where the server required it)."""
    api = patient
    document = _document(api)
    declared: dict[tuple[str, str], bool] = {}
    for template, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "If-Match":
                    declared[(template, method)] = parameter.get("required", False)
    assert set(declared) == set(IF_MATCH)  # a new operation with If-Match: add it above
    optional = sorted(where for where, required in declared.items() if not required)
    assert [template for template, _ in optional] == [
        "/api/v1/assessments/{key}/corrections/preview",
        "/api/v1/assessments/{key}/outcome/preview",
    ]
    for where, required in declared.items():
        if required:
            path, body = IF_MATCH[where]
            response = api.client.post(path, json=body, headers=api.headers("admin"))
            assert response.status_code == 428, (where, response.text)
    # Optional: a preview answers without it, before and after the save it previews.
    outcome, outcome_body = IF_MATCH[optional[1]]
    assert api.post(outcome, outcome_body or {}).status_code == 200
    saved = api.post(outcome.removesuffix("/preview"), POSITIVE, if_match='"1"')
    assert saved.status_code == 200, saved.text
    correction, correction_body = IF_MATCH[optional[0]]
    previewed = api.post(correction, correction_body or {})
    assert previewed.status_code == 200, previewed.text


RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _moments(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every (field, value) under ``value`` that is a date with a time of day."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _moments(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _moments(item, f"{where}[]")
    elif isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}T", value):
        yield where, value


def test_every_moment_is_an_rfc3339_date_time_with_an_offset(patient: Api) -> None:
    """SQLite gives stored moments back without a zone; sent so, they were not the
    ``date-time`` declared (the case list's updated_at, the alerts' created_at and
    next_attempt_at: schemathesis's only response-schema violations)."""
    api = patient
    with write_session(api.engine) as session:
        scan(session, now=NOW, overrides={}, registry=api.registry)  # ROM-101's overdue work
    hook = {"url": "https://93.184.216.34/ltfu-hook", "events": ["assessment.overdue"]}
    assert api.post("/api/v1/webhooks", hook, "admin").status_code == 201
    alerts = api.get("/api/v1/alerts", "admin", limit=1000).json()
    assert alerts
    reads = {
        "/api/v1/adverse-events": api.get("/api/v1/adverse-events"),
        f"/api/v1/adverse-events/{CASE}": api.get(f"/api/v1/adverse-events/{CASE}"),
        "/api/v1/alerts": api.get("/api/v1/alerts", "admin", limit=1000),
        "/api/v1/alerts/{id}": api.get(f"/api/v1/alerts/{quote(alerts[0]['id'])}", "admin"),
        "/api/v1/webhooks": api.get("/api/v1/webhooks", "admin"),
        "/api/v1/patients/ROM-101/audit": api.get("/api/v1/patients/ROM-101/audit"),
        f"/api/v1/assessments/{KEY}": api.get(f"/api/v1/assessments/{KEY}"),
    }
    seen: set[str] = set()
    for path, response in reads.items():
        assert response.status_code == 200, (path, response.text)
        for field, moment in _moments(response.json(), path):
            assert RFC3339.fullmatch(moment), (field, moment)
            seen.add(field)
    assert {
        "/api/v1/adverse-events[].updated_at",
        "/api/v1/alerts[].created_at",
        "/api/v1/alerts[].next_attempt_at",
    } <= seen, sorted(seen)


def test_a_site_id_outside_latin_1_still_downloads_its_due_list(api: Api) -> None:
    """schemathesis found a 500 here: a header value is Latin-1, and the CSV's file name
    carried the site id as it is. Now an ASCII name, and the real one in filename*."""
    with write_session(api.engine) as session:
        sites.add_site(session, site_id="Łódź", name="Łódź", timezone="Europe/Warsaw")
    response = api.get(f"/api/v1/sites/{quote('Łódź')}/due", "admin", format="csv")
    assert response.status_code == 200, response.text
    disposition = response.headers["Content-Disposition"]
    name = f"due-Łódź-{TODAY.isoformat()}.csv"
    assert disposition == (
        f'attachment; filename="due-_d_-{TODAY.isoformat()}.csv"; '
        f"filename*=UTF-8''{quote(name, safe='')}"
    )
    assert attachment("due-Rome-2026-11-25.csv") == 'attachment; filename="due-Rome-2026-11-25.csv"'
    assert attachment('a"b\r\n.csv').startswith('attachment; filename="a_b_.csv"; filename*=')

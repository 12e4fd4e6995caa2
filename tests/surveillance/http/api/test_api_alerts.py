"""Alerting over the API: acknowledging escalations, webhook endpoints, alerts and retries.

Runs on SQLite and PostgreSQL (the ``api`` fixture). Alerts are made the way production
makes them: ``scan`` writes them and ``dispatch`` (no SMTP: the outgoing-mail table)
delivers them. Webhook endpoints point at a global address that is never contacted: they
are disabled before any dispatch, so their alerts are held, not sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col
from support.api_support import NOW, TODAY, USERS, Api

from surveillance.alerting import messages
from surveillance.alerting.dispatch import DispatchConfig, dispatch
from surveillance.alerting.models import Acknowledgement
from surveillance.alerting.scan import scan
from surveillance.config import Settings
from surveillance.http.app import create_app
from surveillance.kit.db import read_session, write_session
from surveillance.main import build_runtime
from surveillance.records.outbox import Alert, AlertStatus, WebhookEndpoint
from surveillance.records.queries import find_assessment

PUBLIC_URL = "https://93.184.216.34/ltfu-hook"  # a global address: allowed, never contacted
# Infused 2024-01-31 (the default): rcl_test:1's window closed 2024-05-14, 925 days before
# NOW: escalation 2 reached. Infused 2026-07-14: it closed late October: level 1.
RCL_1 = "{}:1:rcl_test:1"
LEVEL_1_INFUSION = date(2026, 7, 14)
NOT_YET_INFUSION = date(2026, 11, 1)
ROLES_NOT_ADMIN = ("nurse", "investigator", "pharmacovigilance")
EVENTS = ["assessment.overdue", "assessment.escalated"]


def _ack(
    api: Api, key: str, role: str | None, level: int = 2, note: str = "seen"
) -> httpx.Response:
    body = {"level": level, "note": note}
    response: httpx.Response = api.post(f"/api/v1/assessments/{key}/acknowledge", body, role)
    return response


def _scan(api: Api) -> None:
    with write_session(api.engine) as session:
        scan(session, now=NOW, overrides={}, registry=api.registry)


def _dispatch_all(api: Api) -> None:
    """Deliver everything due now (no SMTP: mail goes to the outgoing-mail table)."""
    config = DispatchConfig(
        registry=api.registry, base_url="http://testserver", smtp=None, webhook_allow_private=True
    )
    for _ in range(20):
        if dispatch(api.engine, now=lambda: NOW, config=config).claimed == 0:
            return
    raise AssertionError("dispatch did not settle")


def _alerts(api: Api, **where: Any) -> list[Alert]:
    with read_session(api.engine) as session:
        statement = select(Alert).filter_by(**where).order_by(col(Alert.id))
        return list(session.execute(statement).scalars())


def _add_webhook(api: Api, **body: Any) -> dict[str, Any]:
    response = api.post("/api/v1/webhooks", {"url": PUBLIC_URL, "events": EVENTS, **body}, "admin")
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@contextmanager
def _allowing_private(api: Api) -> Iterator[TestClient]:
    """A second app on the same database with SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE=true."""
    url = api.engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, webhook_allow_private=True)
    app = create_app(build_runtime(settings, clock=lambda: NOW, registry=api.registry))
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.state.surveillance.engine.dispose()


# -- acknowledge an escalation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "site", "status"),
    [
        ("investigator", "Rome", 200),
        ("admin", "Erlangen", 200),
        ("nurse", "Rome", 403),
        ("pharmacovigilance", "Rome", 403),
        ("investigator", "Erlangen", 404),
        (None, "Rome", 401),
    ],
)
def test_acknowledge_who_may(api: Api, role: str | None, site: str, status: int) -> None:
    key = RCL_1.format(api.enroll(study_id=f"{site[:3].upper()}-201", site_id=site))
    response = _ack(api, key, role, note="  Called the family; visit booked. ")
    assert response.status_code == status, response.text
    with read_session(api.engine) as session:
        acks = list(session.execute(select(Acknowledgement)).scalars())
    if status != 200:
        assert response.headers["content-type"] == "application/problem+json"
        assert acks == []
        return
    assert role is not None
    body = response.json()
    assert body["key"] == key
    assert body["level"] == 2
    assert body["note"] == "Called the family; visit booked."
    assert body["by"] == USERS[role][0]
    assert len(acks) == 1
    assert (acks[0].level, acks[0].by) == (2, USERS[role][0])


def test_acknowledging_twice_is_a_conflict(api: Api) -> None:
    key = RCL_1.format(api.enroll(study_id="ROM-202"))
    assert _ack(api, key, "investigator").status_code == 200
    again = _ack(api, key, "admin", note="me too")
    assert again.status_code == 409
    assert "already acknowledged" in again.json()["detail"]
    # Level 1 of the same item is its own acknowledgement (level 2 was reached after it).
    assert _ack(api, key, "investigator", level=1).status_code == 200


def test_a_level_not_reached_cannot_be_acknowledged(api: Api) -> None:
    recent = RCL_1.format(api.enroll(study_id="ROM-203", infusion_date=LEVEL_1_INFUSION))
    future = RCL_1.format(api.enroll(study_id="ROM-204", infusion_date=NOT_YET_INFUSION))
    refused = _ack(api, recent, "investigator", level=2)
    assert refused.status_code == 409
    with read_session(api.engine) as session:
        days = (TODAY - find_assessment(session, recent)[1].window_end).days
    assert 14 <= days < 60
    assert f"has not reached escalation 2: {days} days overdue" in refused.json()["detail"]
    assert _ack(api, future, "investigator", level=1).status_code == 409
    assert _ack(api, recent, "investigator", level=1).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"level": 3, "note": "x"}, "level"),
        ({"level": 1, "note": ""}, "note"),
        ({"level": 1}, "note"),
        ({"level": 1, "note": "x", "extra": 1}, "extra"),
    ],
)
def test_acknowledge_checks_its_body(api: Api, body: dict[str, Any], field: str) -> None:
    key = RCL_1.format(api.enroll(study_id="ROM-205"))
    response = api.post(f"/api/v1/assessments/{key}/acknowledge", body, "investigator")
    assert response.status_code == 422
    assert field in {error["field"] for error in response.json()["errors"]}


def test_acknowledge_unknown_assessment_is_404(api: Api) -> None:
    api.enroll(study_id="ROM-206")
    for key in ("ROM-206:1:rcl_test:99", "NOBODY:1:rcl_test:1"):
        response = _ack(api, key, "investigator")
        assert response.status_code == 404
        assert response.json()["detail"] == f"no assessment {key!r}"


def test_acknowledged_escalation_is_not_sent_again(api: Api) -> None:
    """The scan skips an acknowledged level; a pending alert of it is cancelled."""
    study_id = api.enroll(study_id="ROM-207", infusion_date=LEVEL_1_INFUSION)
    key = RCL_1.format(study_id)
    _scan(api)
    with read_session(api.engine) as session:
        row_id = find_assessment(session, key)[1].id
    pending = _alerts(api, kind="assessment.escalated", assessment_id=row_id)
    assert [a.level for a in pending] == [1]
    assert _ack(api, key, "investigator", level=1).status_code == 200
    _dispatch_all(api)
    [alert] = _alerts(api, kind="assessment.escalated", assessment_id=row_id)
    assert alert.status == AlertStatus.cancelled.value
    assert alert.cancel_reason == "acknowledged by investigator@rome.example: seen"
    with write_session(api.engine) as session:  # a week later: no new reminder round
        scan(session, now=NOW + timedelta(days=7), overrides={}, registry=api.registry)
    assert len(_alerts(api, kind="assessment.escalated", assessment_id=row_id)) == 1


# -- webhook endpoints ----------------------------------------------------------------------


@pytest.mark.parametrize("role", [*ROLES_NOT_ADMIN, None])
def test_webhooks_are_for_admins_only(api: Api, role: str | None) -> None:
    endpoint = _add_webhook(api)["id"]
    expected = 401 if role is None else 403
    calls = [
        ("GET", "/api/v1/webhooks", None),
        ("POST", "/api/v1/webhooks", {"url": PUBLIC_URL, "events": EVENTS}),
        ("GET", f"/api/v1/webhooks/{endpoint}", None),
        ("POST", f"/api/v1/webhooks/{endpoint}/disable", None),
        ("POST", f"/api/v1/webhooks/{endpoint}/enable", None),
        ("POST", f"/api/v1/webhooks/{endpoint}/rotate-secret", None),
        ("POST", f"/api/v1/webhooks/{endpoint}/replay", {"since": "2026-01-01T00:00:00Z"}),
    ]
    for method, path, body in calls:
        response = api.client.request(method, path, json=body, headers=api.headers(role))
        assert response.status_code == expected, (method, path, response.text)
    with read_session(api.engine) as session:
        assert len(session.execute(select(WebhookEndpoint)).all()) == 1


def test_the_secret_is_shown_once(api: Api) -> None:
    created = _add_webhook(api, site="Rome")
    assert created["secret"].startswith("whsec_")
    assert created["url"] == PUBLIC_URL
    assert created["events"] == sorted(EVENTS)
    assert (created["site"], created["enabled"]) == ("Rome", True)
    listed = api.get("/api/v1/webhooks", "admin").json()
    assert [e["id"] for e in listed] == [created["id"]]
    one = api.get(f"/api/v1/webhooks/{created['id']}", "admin").json()
    for shown in (listed[0], one):
        assert "secret" not in shown
        assert created["secret"] not in str(shown)
    with read_session(api.engine) as session:
        stored = session.get(WebhookEndpoint, created["id"])
        assert stored is not None
        assert stored.secret == created["secret"]


def test_rotating_the_secret_shows_the_new_one_once(api: Api) -> None:
    created = _add_webhook(api)
    rotated = api.post(f"/api/v1/webhooks/{created['id']}/rotate-secret", {}, "admin")
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["secret"].startswith("whsec_")
    assert body["secret"] != created["secret"]
    valid_until = body["previous_secret_valid_until"].replace("Z", "+00:00")
    assert valid_until == (NOW + timedelta(hours=24)).isoformat()
    assert "secret" not in api.get(f"/api/v1/webhooks/{created['id']}", "admin").json()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "https://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
    ],
)
def test_private_addresses_are_refused_unless_allowed(api: Api, url: str) -> None:
    refused = api.post("/api/v1/webhooks", {"url": url, "events": EVENTS}, "admin")
    assert refused.status_code == 422, refused.text
    assert "SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE" in refused.json()["detail"]
    with _allowing_private(api) as client:
        body = {"url": url, "events": EVENTS}
        allowed = client.post("/api/v1/webhooks", json=body, headers=api.headers("admin"))
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["url"] == url


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"url": "ftp://93.184.216.34/x", "events": EVENTS}, "only http and https"),
        ({"url": "https://user:pw@93.184.216.34/x", "events": EVENTS}, "credentials"),
        ({"url": PUBLIC_URL, "events": []}, "events"),
        ({"url": PUBLIC_URL, "events": ["assessment.done"]}, "events"),
        ({"url": PUBLIC_URL, "events": EVENTS, "site": "Nowhere"}, "unknown site"),
    ],
)
def test_webhook_registration_checks_its_input(api: Api, body: dict[str, Any], words: str) -> None:
    response = api.post("/api/v1/webhooks", body, "admin")
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]


def test_disable_enable_and_unknown_endpoints(api: Api) -> None:
    endpoint = _add_webhook(api)["id"]
    disabled = api.post(f"/api/v1/webhooks/{endpoint}/disable", {}, "admin").json()
    assert disabled["enabled"] is False
    assert disabled["disabled_reason"] == "disabled by admin@registry.example"
    enabled = api.post(f"/api/v1/webhooks/{endpoint}/enable", {}, "admin").json()
    assert (enabled["enabled"], enabled["disabled_reason"]) == (True, None)
    for action in ("enable", "disable", "rotate-secret"):
        assert api.post(f"/api/v1/webhooks/wh_nope/{action}", {}, "admin").status_code == 404
    assert api.get("/api/v1/webhooks/wh_nope", "admin").status_code == 404


def test_held_alerts_are_replayed_after_re_enabling(api: Api) -> None:
    api.enroll(study_id="ROM-301", infusion_date=LEVEL_1_INFUSION)
    endpoint = _add_webhook(api, site="Rome")["id"]
    _scan(api)
    assert api.post(f"/api/v1/webhooks/{endpoint}/disable", {}, "admin").status_code == 200
    _dispatch_all(api)  # the endpoint is disabled: its alerts are held, nothing is sent
    held = _alerts(api, recipient=endpoint)
    assert held
    assert {a.status for a in held} == {AlertStatus.held.value}
    listed = api.get("/api/v1/alerts", "admin", status="held", limit=1000).json()
    assert {a["id"] for a in listed} == {a.id for a in held}
    api.post(f"/api/v1/webhooks/{endpoint}/enable", {}, "admin")
    since = (NOW - timedelta(hours=1)).isoformat()
    replay = api.post(f"/api/v1/webhooks/{endpoint}/replay", {"since": since}, "admin")
    assert replay.status_code == 200
    assert replay.json() == {"endpoint": endpoint, "queued": len(held)}
    assert {a.status for a in _alerts(api, recipient=endpoint)} == {AlertStatus.pending.value}
    later = api.post(
        f"/api/v1/webhooks/{endpoint}/replay", {"since": "2030-01-01T00:00:00"}, "admin"
    )
    assert later.json()["queued"] == 0


# -- alerts ---------------------------------------------------------------------------------


def _failed_alerts(api: Api) -> list[Alert]:
    """Erlangen has no nurse: its overdue emails have nobody to go to and fail."""
    api.enroll(study_id="ERL-401", site_id="Erlangen", infusion_date=LEVEL_1_INFUSION)
    _scan(api)
    _dispatch_all(api)
    failed = _alerts(api, status=AlertStatus.failed.value)
    assert failed
    return failed


def test_alerts_are_for_admins_only(api: Api) -> None:
    failed = _failed_alerts(api)[0]
    for role in (*ROLES_NOT_ADMIN, None):
        expected = 401 if role is None else 403
        assert api.get("/api/v1/alerts", role).status_code == expected
        assert api.get(f"/api/v1/alerts/{failed.id}", role).status_code == expected
        assert api.post(f"/api/v1/alerts/{failed.id}/retry", {}, role).status_code == expected
    assert _alerts(api, id=failed.id)[0].status == AlertStatus.failed.value


def test_failed_alerts_are_listed_with_attempts_and_last_error(api: Api) -> None:
    failed = _failed_alerts(api)
    response = api.get("/api/v1/alerts", "admin", status="failed")
    assert response.status_code == 200
    listed = response.json()
    assert {a["id"] for a in listed} == {a.id for a in failed}
    one = next(a for a in listed if a["kind"] == "assessment.overdue")
    assert one["status"] == "failed"
    assert one["recipient"] == "site:Erlangen:nurse"
    assert (one["attempts"], one["attempts_recorded"]) == (1, 1)
    assert "no active user" in one["last_error"]
    everything = api.get("/api/v1/alerts", "admin", limit=1000).json()
    assert {"sent", "failed"} <= {a["status"] for a in everything}
    assert api.get("/api/v1/alerts", "admin", status="lost").status_code == 422


def test_retry_a_failed_alert_by_its_id(api: Api) -> None:
    failed = next(a for a in _failed_alerts(api) if a.kind == "assessment.overdue")
    assert ":" in failed.id
    detail = api.get(f"/api/v1/alerts/{failed.id}", "admin").json()
    assert [a["outcome"] for a in detail["attempt_log"]] == ["permanent"]
    retried = api.post(f"/api/v1/alerts/{failed.id}/retry", {}, "admin")
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert (body["id"], body["status"], body["attempts"]) == (failed.id, "pending", 0)
    assert body["attempts_recorded"] == 1
    again = api.post(f"/api/v1/alerts/{failed.id}/retry", {}, "admin")
    assert again.status_code == 409
    assert api.post("/api/v1/alerts/no:such:alert/retry", {}, "admin").status_code == 404
    assert api.get("/api/v1/alerts/no:such:alert", "admin").status_code == 404


# -- the webhook payload, documented ------------------------------------------------------------


def test_openapi_documents_each_webhook_event(api: Api) -> None:
    """The documented ``data`` fields are exactly what a real alert carries."""
    api.enroll(study_id="ROM-501")
    _scan(api)
    document = api.client.get("/openapi.json").json()
    hooks = document["webhooks"]
    assert set(hooks) == {
        "assessment.overdue",
        "assessment.escalated",
        "patient.follow_up_at_risk",
        "adverse_event.created",
        "adverse_event.updated",
        "adverse_event.nullified",
        "adverse_event.serious",
    }
    schemas = document["components"]["schemas"]
    for event, operation in hooks.items():
        post = operation["post"]
        assert {p["name"] for p in post["parameters"]} == {
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        }
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        event_schema = schemas[ref.rsplit("/", 1)[1]]
        assert set(event_schema["required"]) == {"type", "timestamp", "data"}
        assert event_schema["properties"]["type"]["const"] == event
    documented = set(schemas["AssessmentEventData"]["properties"])
    with read_session(api.engine) as session:
        for kind in ("assessment.overdue", "assessment.escalated", "patient.follow_up_at_risk"):
            alert = session.execute(select(Alert).filter_by(kind=kind).limit(1)).scalar_one()
            data = messages.event_data(session, alert, registry=api.registry, base_url="http://x")
            assert set(data) == documented, kind

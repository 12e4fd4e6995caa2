"""Webhook endpoints in the browser (admins): add, disable, enable, rotate, replay.

The forms call ``alerting.endpoints`` as the API does, so the same URL check refuses a
loopback address (unless the server allows private addresses), every change is audited,
and a secret is on the page that made it, once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col
from support.web_support import NOW, USERS, SiteDb, csrf_of, sign_in_as

from surveillance.alerting import endpoints
from surveillance.config import Settings
from surveillance.http.app import create_app
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.main import build_runtime
from surveillance.records.outbox import Alert, AlertStatus, WebhookEndpoint

PUBLIC = "https://93.184.216.34/ltfu-hook"  # a global address: allowed, never contacted
ADMIN = USERS["admin"][0]


@pytest.fixture
def admin(pages: TestClient) -> str:
    sign_in_as(pages, "admin")
    return csrf_of(pages.get("/admin/webhooks"))


@pytest.fixture
def private_pages(site_db: SiteDb) -> Iterator[TestClient]:
    """The same database served with SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE=true."""
    settings = Settings(database_url=site_db.url, webhook_allow_private=True)
    app = create_app(build_runtime(settings, clock=lambda: NOW))
    with TestClient(app, follow_redirects=False) as client:
        yield client


def _add(client: TestClient, csrf: str, **fields: object) -> httpx.Response:
    data = {
        "csrf_token": csrf,
        "url": PUBLIC,
        "events": ["assessment.overdue", "adverse_event.serious"],
        **fields,
    }
    response: httpx.Response = client.post("/admin/webhooks", data=data)
    return response


def _endpoints(db: SiteDb) -> list[WebhookEndpoint]:
    with read_session(db.engine) as session:
        return endpoints.list_endpoints(session)


def _audit(db: SiteDb, action: str) -> list[AuditEntry]:
    with read_session(db.engine) as session:
        statement = select(AuditEntry).where(col(AuditEntry.action) == action)
        return list(session.execute(statement).scalars())


def _secret_on(page: httpx.Response) -> str:
    found = re.search(r'id="wh-secret-value"[^>]*value="(whsec_[^"]+)"', page.text)
    assert found, "no secret on the page"
    return found.group(1)


class TestAdd:
    def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(
        self, pages: TestClient, site_db: SiteDb, admin: str
    ) -> None:
        page = _add(pages, admin, site="Rome")
        assert page.status_code == 201, re.findall(r"field-error[^<]*|<p>[^<]*", page.text)
        [stored] = _endpoints(site_db)
        assert (stored.url, stored.event_types, stored.site_id) == (
            PUBLIC,
            "adverse_event.serious,assessment.overdue",
            "Rome",
        )
        assert _secret_on(page) == stored.secret
        assert "shown this once" in page.text
        [entry] = _audit(site_db, "add_webhook")
        assert (entry.actor, entry.entity_key) == (ADMIN, stored.id)
        listed = pages.get("/admin/webhooks")
        assert stored.id in listed.text
        assert stored.secret not in listed.text  # never listed again

    def test_a_loopback_url_is_refused_beside_the_field_and_the_entries_kept(
        self, pages: TestClient, site_db: SiteDb, admin: str
    ) -> None:
        page = _add(pages, admin, url="http://127.0.0.1:9000/hooks", site="Erlangen")
        assert page.status_code == 422
        error = re.search(r'<p class="field-error" id="wh-url-error">([^<]+)</p>', page.text)
        assert error, page.text
        assert "private, loopback or link-local" in error.group(1)
        assert 'aria-invalid="true"' in page.text
        assert 'value="http://127.0.0.1:9000/hooks"' in page.text
        assert re.search(r'value="assessment.overdue" checked', page.text)
        assert re.search(r'<option value="Erlangen" selected', page.text)
        assert _endpoints(site_db) == []
        assert _audit(site_db, "add_webhook") == []

    @pytest.mark.parametrize(
        ("fields", "field", "says"),
        [
            ({"url": "ftp://93.184.216.34/x"}, "url", "only http and https"),
            ({"events": []}, "events", "Choose at least one event."),
            ({"events": ["gossip"]}, "events", "unknown event types"),
        ],
    )
    def test_other_refusals_name_their_field(
        self,
        pages: TestClient,
        site_db: SiteDb,
        admin: str,
        fields: dict[str, object],
        field: str,
        says: str,
    ) -> None:
        page = _add(pages, admin, **fields)
        assert page.status_code == 422
        assert re.search(rf'id="wh-{field}-error">[^<]*{re.escape(says)}', page.text), page.text
        assert _endpoints(site_db) == []

    def test_with_private_addresses_allowed_a_loopback_receiver_is_accepted(
        self, private_pages: TestClient, site_db: SiteDb
    ) -> None:
        sign_in_as(private_pages, "admin")
        csrf = csrf_of(private_pages.get("/admin/webhooks"))
        page = _add(private_pages, csrf, url="http://127.0.0.1:9000/hooks")
        assert page.status_code == 201
        assert [e.url for e in _endpoints(site_db)] == ["http://127.0.0.1:9000/hooks"]


class TestChanges:
    def test_disable_then_enable_audited_as_the_api_does(
        self, pages: TestClient, site_db: SiteDb, admin: str
    ) -> None:
        _add(pages, admin)
        [endpoint] = _endpoints(site_db)
        off = pages.post(f"/admin/webhooks/{endpoint.id}/disable", data={"csrf_token": admin})
        assert (off.status_code, off.headers["location"]) == (303, f"/admin/webhooks#{endpoint.id}")
        [stored] = _endpoints(site_db)
        assert (stored.enabled, stored.disabled_reason) == (False, f"disabled by {ADMIN}")
        page = pages.get("/admin/webhooks")
        assert f"Disabled {endpoint.id}" in page.text
        assert f'aria-label="Enable {endpoint.id}"' in page.text
        on = pages.post(f"/admin/webhooks/{endpoint.id}/enable", data={"csrf_token": admin})
        assert on.status_code == 303
        assert _endpoints(site_db)[0].enabled
        assert [e.actor for e in _audit(site_db, "disable_webhook")] == [ADMIN]
        assert [e.actor for e in _audit(site_db, "enable_webhook")] == [ADMIN]

    def test_rotating_shows_the_new_secret_once_and_the_old_one_keeps_signing(
        self, pages: TestClient, site_db: SiteDb, admin: str
    ) -> None:
        first = _secret_on(_add(pages, admin))
        [endpoint] = _endpoints(site_db)
        page = pages.post(
            f"/admin/webhooks/{endpoint.id}/rotate-secret", data={"csrf_token": admin}
        )
        assert page.status_code == 200
        [stored] = _endpoints(site_db)
        assert _secret_on(page) == stored.secret != first
        assert stored.previous_secret == first
        until = (NOW + timedelta(hours=24)).strftime("%-d %b %Y, %H:%M")  # 26 Nov 2026, 12:00
        assert f"The old secret also signs until {until} UTC" in page.text
        assert len(_audit(site_db, "rotate_webhook_secret")) == 1

    def test_replay_queues_the_endpoints_alerts_since_a_day(
        self, pages: TestClient, site_db: SiteDb, admin: str
    ) -> None:
        _add(pages, admin)
        [endpoint] = _endpoints(site_db)
        with write_session(site_db.engine) as session:
            for n, status in enumerate((AlertStatus.held, AlertStatus.sent)):
                session.add(
                    Alert(
                        id=f"alert-{n}",
                        kind="assessment.overdue",
                        channel="webhook",
                        recipient=endpoint.id,
                        status=status.value,
                        payload="{}",
                        as_of=NOW.date(),
                        created_at=NOW - timedelta(days=n * 10),
                        next_attempt_at=NOW,
                    )
                )
        since = (NOW - timedelta(days=2)).date().isoformat()
        response = pages.post(
            f"/admin/webhooks/{endpoint.id}/replay", data={"csrf_token": admin, "since": since}
        )
        assert response.status_code == 303
        assert (
            f"Queued again for {endpoint.id}: 1 alert created since 23 Nov 2026"
            in pages.get("/admin/webhooks").text
        )
        with read_session(site_db.engine) as session:
            statuses = {a.id: a.status for a in session.execute(select(Alert)).scalars()}
        assert statuses == {"alert-0": "pending", "alert-1": "sent"}
        assert len(_audit(site_db, "replay_webhook")) == 1

    def test_an_unknown_endpoint_is_a_404_page(self, pages: TestClient, admin: str) -> None:
        page = pages.post("/admin/webhooks/wh_none/disable", data={"csrf_token": admin})
        assert page.status_code == 404
        assert "<h1>" in page.text

    def test_a_form_without_the_session_token_changes_nothing(
        self, pages: TestClient, site_db: SiteDb, admin: str
    ) -> None:
        _add(pages, admin)
        [endpoint] = _endpoints(site_db)
        for action in ("disable", "rotate-secret"):
            response = pages.post(f"/admin/webhooks/{endpoint.id}/{action}", data={})
            assert response.status_code == 403
        assert _add(pages, "forged").status_code == 403
        assert _endpoints(site_db) == [endpoint]


class TestWhoMay:
    @pytest.mark.parametrize("role", ["nurse", "investigator", "pharmacovigilance"])
    def test_only_admins_reach_the_page_and_its_forms(
        self, pages: TestClient, site_db: SiteDb, role: str
    ) -> None:
        with write_session(site_db.engine) as session:
            made = endpoints.add_endpoint(
                session,
                url=PUBLIC,
                events=["assessment.overdue"],
                site_id=None,
                allow_private=False,
                actor="test",
                now=NOW,
            )
            endpoint_id = made.endpoint.id
        sign_in_as(pages, role)
        csrf = csrf_of(pages.get("/access"))
        page = pages.get("/admin/webhooks")
        assert page.status_code == 403
        assert "<h1>Not allowed</h1>" in page.text
        assert "/admin/webhooks" not in re.findall(r'<li><a href="([^"]+)"', page.text)
        assert _add(pages, csrf).status_code == 403
        for action in ("disable", "enable", "rotate-secret"):
            response = pages.post(
                f"/admin/webhooks/{endpoint_id}/{action}", data={"csrf_token": csrf}
            )
            assert response.status_code == 403
        [stored] = _endpoints(site_db)
        assert (stored.enabled, stored.secret) == (True, made.secret)

    def test_the_admins_navigation_and_alerts_page_link_here(
        self, pages: TestClient, admin: str
    ) -> None:
        alerts = pages.get("/admin/alerts")
        assert '<a href="/admin/webhooks">Webhooks</a>' in alerts.text
        assert "use the CLI" not in alerts.text
        assert '<a href="/admin/webhooks#h-add">' in alerts.text

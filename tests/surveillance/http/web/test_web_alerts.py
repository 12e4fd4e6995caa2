"""Alerting in the browser: the outgoing-mail page, the admins' alerts page, and
acknowledging an escalation from the dashboard (CSRF-checked).

Alerts are made as in production: ``scan`` writes them, ``dispatch`` with no SMTP server
writes the emails to the outgoing-mail table. Erlangen has no nurse, so its overdue
emails have nobody to go to: they fail, and show on the admins' page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col
from support.web_support import NOW, USERS, SiteDb, csrf_of, sign_in_as

import rules
from surveillance.alerting import endpoints
from surveillance.alerting.dispatch import DispatchConfig, dispatch
from surveillance.alerting.models import Acknowledgement, OutgoingMail
from surveillance.alerting.scan import scan
from surveillance.kit.db import read_session, write_session
from surveillance.records.outbox import Alert, AlertStatus

# ROM-101 (infused 2024-01-31): its oldest item closed 2024-01-30, long past escalation 2.
OLDEST = "ROM-101:1:baseline_evaluation:1"
NOT_YET = "ROM-101:1:ltfu_exam:5"  # window 2027-01-01..03-02


@pytest.fixture
def dispatched(site_db: SiteDb) -> SiteDb:
    """Scan as of today and deliver everything (no SMTP: written to the outgoing mail)."""
    registry = rules.ProtocolRegistry.from_directory()
    with write_session(site_db.engine) as session:
        scan(session, now=NOW, overrides={}, registry=registry)
    config = DispatchConfig(
        registry=registry, base_url="http://testserver", smtp=None, webhook_allow_private=True
    )
    for _ in range(20):
        if dispatch(site_db.engine, now=lambda: NOW, config=config).claimed == 0:
            return site_db
    raise AssertionError("dispatch did not settle")


def _mails(db: SiteDb) -> list[OutgoingMail]:
    with read_session(db.engine) as session:
        statement = select(OutgoingMail).order_by(col(OutgoingMail.id).desc())
        return list(session.execute(statement).scalars())


def _acks(db: SiteDb) -> list[Acknowledgement]:
    with read_session(db.engine) as session:
        return list(session.execute(select(Acknowledgement)).scalars())


def _alert(db: SiteDb, alert_id: str) -> Alert:
    with read_session(db.engine) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return alert


def _failed(db: SiteDb) -> list[Alert]:
    with read_session(db.engine) as session:
        statement = select(Alert).where(col(Alert.status) == AlertStatus.failed.value)
        return list(session.execute(statement).scalars())


def _links(page: httpx.Response) -> list[str]:
    return re.findall(r'<li><a href="([^"]+)"', page.text)


class TestOutgoingMail:
    def test_a_nurse_sees_the_mail_dispatch_wrote_to_her(
        self, pages: TestClient, dispatched: SiteDb
    ) -> None:
        nurse = USERS["nurse"][0]
        mails = _mails(dispatched)
        hers = [m for m in mails if nurse in m.to.split(", ")]
        others = [m for m in mails if nurse not in m.to.split(", ")]
        assert hers
        assert others  # e.g. the escalations to the admins
        sign_in_as(pages, "nurse")
        page = pages.get("/mail")
        assert page.status_code == 200
        assert "<h1>Outgoing mail</h1>" in page.text
        assert "No SMTP server is configured" in page.text
        shown = [int(i) for i in re.findall(r'href="/mail/(\d+)"', page.text)]
        assert shown == [m.id for m in hers][: len(shown)]  # newest first, hers only
        assert "Overdue: ROM-101" in page.text
        assert "Escalation 2" not in page.text  # sent to the admins, not to her

    def test_the_detail_shows_the_text_body(self, pages: TestClient, dispatched: SiteDb) -> None:
        mail = next(m for m in _mails(dispatched) if m.subject.startswith("[LTFU] Overdue"))
        sign_in_as(pages, "nurse")
        page = pages.get(f"/mail/{mail.id}")
        assert page.status_code == 200
        assert '<pre class="mail-body">' in page.text
        assert "ROM-101" in page.text
        assert mail.alert_id in page.text
        first_line = next(line for line in mail.text_body.splitlines() if line.strip())
        assert first_line.replace("'", "&#39;").replace("&", "&amp;")[:20] in page.text

    def test_mail_to_someone_else_is_not_found(self, pages: TestClient, dispatched: SiteDb) -> None:
        admins = next(m for m in _mails(dispatched) if m.to == USERS["admin"][0])
        sign_in_as(pages, "nurse")
        assert pages.get(f"/mail/{admins.id}").status_code == 404
        assert pages.get("/mail/999999").status_code == 404

    def test_an_admin_sees_every_mail_page_by_page(
        self, pages: TestClient, dispatched: SiteDb
    ) -> None:
        ids = [m.id for m in _mails(dispatched)]
        assert len(ids) > 200
        sign_in_as(pages, "admin")
        page = pages.get("/mail")
        assert "All mail" in page.text
        shown = [int(i) for i in re.findall(r'href="/mail/(\d+)"', page.text)]
        assert shown == ids[:200]
        older = re.search(r'href="(/mail\?before=\d+)"', page.text)
        assert older
        rest = pages.get(older.group(1))
        assert [int(i) for i in re.findall(r'href="/mail/(\d+)"', rest.text)] == ids[200:400]

    def test_nobody_signed_in_goes_to_sign_in(self, pages: TestClient) -> None:
        response = pages.get("/mail")
        assert (response.status_code, response.headers["location"]) == (303, "/login?next=%2Fmail")

    def test_the_navigation_links_to_mail_and_for_admins_to_alerts(self, pages: TestClient) -> None:
        sign_in_as(pages, "nurse")
        links = _links(pages.get("/dashboard"))
        assert "/mail" in links
        assert "/admin/alerts" not in links
        pages.post("/logout", data={"csrf_token": csrf_of(pages.get("/dashboard"))})
        sign_in_as(pages, "admin")
        links = _links(pages.get("/dashboard"))
        assert {"/mail", "/admin/alerts"} <= set(links)


class TestAdminAlerts:
    def test_failed_alerts_show_their_error_and_a_retry_button(
        self, pages: TestClient, dispatched: SiteDb
    ) -> None:
        failed = _failed(dispatched)
        assert failed
        sign_in_as(pages, "admin")
        page = pages.get("/admin/alerts")
        assert page.status_code == 200
        assert "no active user to send it to" in page.text
        for alert in failed[:5]:
            assert f'data-alert-id="{alert.id}"' in page.text
        assert page.text.count('action="/admin/alerts/retry"') == len(failed)

    @pytest.mark.parametrize("role", ["nurse", "investigator", "pharmacovigilance"])
    def test_only_admins_may_look_or_retry(
        self, pages: TestClient, dispatched: SiteDb, role: str
    ) -> None:
        sign_in_as(pages, role)
        assert pages.get("/admin/alerts").status_code == 403
        csrf = csrf_of(pages.get("/mail"))
        alert = _failed(dispatched)[0]
        response = pages.post(
            "/admin/alerts/retry", data={"csrf_token": csrf, "alert_id": alert.id}
        )
        assert response.status_code == 403
        assert _alert(dispatched, alert.id).status == "failed"

    def test_retry_queues_the_alert_again(self, pages: TestClient, dispatched: SiteDb) -> None:
        alert = _failed(dispatched)[0]
        sign_in_as(pages, "admin")
        csrf = csrf_of(pages.get("/admin/alerts"))
        response = pages.post(
            "/admin/alerts/retry", data={"csrf_token": csrf, "alert_id": alert.id}
        )
        assert (response.status_code, response.headers["location"]) == (303, "/admin/alerts")
        retried = _alert(dispatched, alert.id)
        assert (retried.status, retried.attempts) == ("pending", 0)
        page = pages.get("/admin/alerts")
        assert f"Queued again: {alert.id}" in page.text
        assert f'data-alert-id="{alert.id}"' not in page.text
        again = pages.post("/admin/alerts/retry", data={"csrf_token": csrf, "alert_id": alert.id})
        assert again.status_code == 303
        assert "only failed or held alerts are retried" in pages.get("/admin/alerts").text

    def test_retry_without_the_session_token_is_refused(
        self, pages: TestClient, dispatched: SiteDb
    ) -> None:
        alert = _failed(dispatched)[0]
        sign_in_as(pages, "admin")
        response = pages.post(
            "/admin/alerts/retry", data={"csrf_token": "forged", "alert_id": alert.id}
        )
        assert response.status_code == 403
        assert _alert(dispatched, alert.id).status == "failed"

    def test_webhook_endpoints_are_listed_with_their_state(
        self, pages: TestClient, site_db: SiteDb
    ) -> None:
        now = datetime(2026, 11, 25, 12, tzinfo=UTC)
        with write_session(site_db.engine) as session:
            kept = endpoints.add_endpoint(
                session, url="http://127.0.0.1:9/kept", events=["assessment.overdue"],
                site_id="Rome", allow_private=True, actor="test", now=now,
            )  # fmt: skip
            off = endpoints.add_endpoint(
                session, url="http://127.0.0.1:9/off", events=["assessment.escalated"],
                site_id=None, allow_private=True, actor="test", now=now,
            )  # fmt: skip
            endpoints.set_enabled(session, off.endpoint.id, enabled=False, actor="ops", now=now)
        sign_in_as(pages, "admin")
        page = pages.get("/admin/alerts")
        assert kept.endpoint.id in page.text
        assert "http://127.0.0.1:9/kept" in page.text
        assert "disabled</span>: disabled by ops" in page.text
        assert kept.secret not in page.text


class TestAcknowledge:
    def _form(self, pages: TestClient, role: str = "investigator") -> str:
        sign_in_as(pages, role)
        return csrf_of(pages.get("/dashboard"))

    def _post(
        self, pages: TestClient, csrf: str, key: str = OLDEST, level: str = "2", note: str = "seen"
    ) -> httpx.Response:
        data = {"csrf_token": csrf, "level": level, "note": note, "next": "/dashboard#site-Rome"}
        response: httpx.Response = pages.post(f"/assessments/{key}/acknowledge", data=data)
        return response

    def test_the_dashboard_offers_an_acknowledge_form(self, pages: TestClient) -> None:
        self._form(pages)
        page = pages.get("/dashboard")
        assert "Escalations" in page.text
        assert f'<tr data-key="{OLDEST}">' in page.text
        assert (
            'action="/assessments/ROM-101%3A1%3Abaseline_evaluation%3A1/acknowledge"' in page.text
        )
        assert '<input type="hidden" name="level" value="2">' in page.text
        assert ">Acknowledge<" in page.text

    def test_acknowledging_records_who_and_shows_it(
        self, pages: TestClient, site_db: SiteDb
    ) -> None:
        csrf = self._form(pages)
        response = self._post(pages, csrf, note="Family reached; visit on Monday.")
        assert (response.status_code, response.headers["location"]) == (303, "/dashboard#site-Rome")
        [ack] = _acks(site_db)
        assert (ack.level, ack.by, ack.note) == (
            2,
            USERS["investigator"][0],
            "Family reached; visit on Monday.",
        )
        page = pages.get("/dashboard")
        assert "Acknowledged escalation 2 of ROM-101" in page.text  # the flash
        assert (
            f"Escalation 2 acknowledged by {USERS['investigator'][0]} on 25 Nov 2026: "
            "Family reached; visit on Monday."
        ) in page.text
        assert "Latest acknowledged" in page.text

    def test_twice_is_refused_with_a_message(self, pages: TestClient, site_db: SiteDb) -> None:
        csrf = self._form(pages)
        self._post(pages, csrf)
        response = self._post(pages, csrf, note="again")
        assert response.status_code == 303
        assert len(_acks(site_db)) == 1
        assert "Nothing was acknowledged" in pages.get("/dashboard").text

    def test_a_level_not_reached_is_refused(self, pages: TestClient, site_db: SiteDb) -> None:
        csrf = self._form(pages)
        self._post(pages, csrf, key=NOT_YET, level="1")
        assert _acks(site_db) == []
        assert "has not reached escalation 1" in pages.get("/dashboard").text

    def test_without_the_session_token_nothing_is_acknowledged(
        self, pages: TestClient, site_db: SiteDb
    ) -> None:
        self._form(pages)
        for forged in ("", "forged"):
            response = self._post(pages, forged)
            assert response.status_code == 403
            assert "did not come from this site" in response.text
        assert _acks(site_db) == []

    def test_a_nurse_sees_escalations_but_may_not_acknowledge(
        self, pages: TestClient, site_db: SiteDb
    ) -> None:
        csrf = self._form(pages, "nurse")
        page = pages.get("/dashboard")
        assert f'<tr data-key="{OLDEST}">' in page.text
        assert "/acknowledge" not in page.text
        assert self._post(pages, csrf).status_code == 403
        assert _acks(site_db) == []

    def test_another_sites_assessment_is_not_found(
        self, pages: TestClient, site_db: SiteDb
    ) -> None:
        csrf = self._form(pages)
        assert self._post(pages, csrf, key="ERL-101:1:baseline_evaluation:1").status_code == 404
        assert _acks(site_db) == []

    def test_an_admin_may_acknowledge_any_site(self, pages: TestClient, site_db: SiteDb) -> None:
        csrf = self._form(pages, "admin")
        assert self._post(pages, csrf, key="ERL-101:1:baseline_evaluation:1").status_code == 303
        assert [a.by for a in _acks(site_db)] == [USERS["admin"][0]]

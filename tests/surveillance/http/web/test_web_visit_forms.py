"""The due list grouped by visit, "record this visit" on one form (all or nothing), and
overdue rows marked missed together (over HTTP, on SQLite)."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col
from support.web_support import SiteDb, csrf_of, sign_in_as

from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session
from surveillance.records.patients import Assessment, OutcomeRecord, Patient

# ROM-101, infused 2024-01-31, today 2026-11-25: the month-12 visit (due 2025-01-31) is overdue.
VISIT = "/patients/ROM-101/visits/2025-01-31"


@pytest.fixture
def nurse(pages: TestClient) -> str:
    sign_in_as(pages, "nurse")
    return csrf_of(pages.get("/sites/Rome/due"))


def _rows(db: SiteDb, study_id: str = "ROM-101") -> dict[str, Assessment]:
    with read_session(db.engine) as session:
        found = session.execute(
            select(Assessment).join(Patient, col(Patient.id) == col(Assessment.patient_id))
            .where(col(Patient.study_id) == study_id)
        ).scalars().all()  # fmt: skip
        return {f"{study_id}:{r.infusion_number}:{r.assessment}:{r.occurrence}": r for r in found}


def _written(db: SiteDb) -> tuple[int, int]:
    with read_session(db.engine) as session:
        return (
            len(session.execute(select(col(OutcomeRecord.id))).all()),
            len(session.execute(select(col(AuditEntry.id))).all()),
        )


def _form_fields(page: str) -> dict[str, str]:
    """The visit form as loaded: every key's hidden version, outcome "completed"."""
    keys = re.findall(r'name="key" value="([^"]+)"', page)
    data = {"csrf_token": csrf_of(page_response := _Page(page)), "on": "2025-01-31"}
    del page_response
    for key in keys:
        version = re.search(rf'name="version:{re.escape(key)}" value="(\d+)"', page)
        assert version is not None
        data |= {f"version:{key}": version.group(1), f"outcome:{key}": "completed"}
    return data


class _Page:
    def __init__(self, text: str) -> None:
        self.text = text


def _post_visit(pages: TestClient, fields: dict[str, str], keys: list[str]) -> httpx.Response:
    body = list(fields.items()) + [("key", k) for k in keys]
    response: httpx.Response = pages.post(
        VISIT,
        content=httpx.QueryParams(body).__str__().encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    return response


def _keys(page: str) -> list[str]:
    return re.findall(r'name="key" value="([^"]+)"', page)


class TestGroupedList:
    def test_one_patient_s_rows_in_one_window_read_as_one_visit(
        self, pages: TestClient, nurse: str
    ) -> None:
        page = pages.get("/sites/Rome/due").text
        overdue = page[page.index('id="table-overdue"') :]
        heads = re.findall(r'<tbody class="visit"[^>]*aria-label="([^"]+)"', overdue)
        assert "ROM-101 · Month 12" in heads
        assert heads.count("ROM-101 · Month 12") == 1
        assert f'href="{VISIT}?next=' in page
        assert 'data-label="Patient"' in page  # the cards markup is kept
        # Overdue first: the section still opens the list, the most overdue visit first.
        assert page.index('id="table-overdue"') < page.index('id="table-upcoming"')

    def test_the_list_in_italian(self, pages: TestClient, nurse: str) -> None:
        page = pages.get("/sites/Rome/due", headers={"Accept-Language": "it"}).text
        assert "Registra questa visita" in page
        assert "Mese 12" in page


class TestRecordVisit:
    def test_a_visit_is_recorded_in_one_go(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        form = pages.get(VISIT)
        assert form.status_code == 200
        keys = _keys(form.text)
        assert len(keys) >= 10
        fields = _form_fields(form.text)
        fields["result:ROM-101:1:rcl_test:3"] = "negative"
        fields["outcome:ROM-101:1:growth:4"] = "pending"  # left for later, if it is there
        saved = _post_visit(pages, fields, keys)
        assert saved.status_code == 303, saved.text[:3000]
        rows = _rows(site_db)
        assert rows["ROM-101:1:rcl_test:3"].result == "negative"
        done = [k for k in keys if rows[k].status == "completed"]
        assert len(done) == len([k for k in keys if fields[f"outcome:{k}"] == "completed"])
        page = pages.get(saved.headers["location"]).text
        assert "Recorded the visit of ROM-101" in page

    def test_one_refused_row_saves_nothing_and_keeps_what_was_typed(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        form = pages.get(VISIT)
        keys = _keys(form.text)
        fields = _form_fields(form.text)
        fields["result:ROM-101:1:rcl_test:3"] = "positive"
        fields["note:ROM-101:1:rcl_test:3"] = "drawn at 9"
        fields["outcome:ROM-101:1:sle_damage_index:1"] = "not_done"  # no reason given
        before = _written(site_db)
        refused = _post_visit(pages, fields, keys)
        assert refused.status_code == 422
        assert _written(site_db) == before
        assert all(r.status == "pending" for k, r in _rows(site_db).items() if k in keys)
        text = refused.text
        assert "ROM-101:1:sle_damage_index:1: " not in text  # no internal key as the message
        item = text[text.index('data-key="ROM-101:1:sle_damage_index:1"') :]
        item = item[: item.index("</li>")]
        assert "Say why it was not done" in item
        assert re.search(
            r'name="reason:[^"]+" [^>]*aria-invalid="true" aria-describedby="e-w', item
        )
        rcl = text[text.index('data-key="ROM-101:1:rcl_test:3"') :]
        assert '<option value="positive" selected>' in rcl[: rcl.index("</li>")]
        assert 'value="drawn at 9"' in rcl

    def test_check_what_it_starts_writes_nothing_and_keeps_what_was_typed(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        form = pages.get(VISIT)
        keys = _keys(form.text)
        fields = _form_fields(form.text)
        fields["result:ROM-101:1:rcl_test:3"] = "positive"
        fields["note:ROM-101:1:rcl_test:3"] = "drawn at 9"
        fields["outcome:ROM-101:1:sle_damage_index:1"] = "pending"  # left for later
        before = _written(site_db)
        checked = _post_visit(pages, fields | {"intent": "preview"}, keys)
        assert checked.status_code == 200, checked.text[:3000]
        assert _written(site_db) == before
        assert all(r.status == "pending" for k, r in _rows(site_db).items() if k in keys)
        text = checked.text
        preview = text[text.index('id="visit-preview"') : text.index("</section>")]
        listed = re.findall(r'<li data-key="([^"]+)">', preview)
        assert "ROM-101:1:rcl_test:3" in listed
        assert "ROM-101:1:sle_damage_index:1" not in listed  # not recorded now: no effects
        assert len(listed) == len(keys) - 1
        rcl = preview[preview.index('data-key="ROM-101:1:rcl_test:3"') :]
        rcl = rcl[: rcl.index("</li>")]
        assert 'class="starts"' in rcl  # a positive RCL test starts intensified testing
        form_rcl = text[text.index('<li class="visit-item') :]
        form_rcl = form_rcl[form_rcl.index('data-key="ROM-101:1:rcl_test:3"') :]
        assert '<option value="positive" selected>' in form_rcl[: form_rcl.index("</li>")]
        assert 'value="drawn at 9"' in form_rcl
        damage = text[text.index('data-key="ROM-101:1:sle_damage_index:1"') :]
        assert '<option value="pending" selected>' in damage[: damage.index("</li>")]
        saved = _post_visit(pages, fields | {"intent": "save"}, keys)
        assert saved.status_code == 303
        assert _rows(site_db)["ROM-101:1:rcl_test:3"].result == "positive"

    def test_the_preview_in_german(self, pages: TestClient, nurse: str) -> None:
        form = pages.get(VISIT)
        fields = _form_fields(form.text) | {"intent": "preview"}
        body = list(fields.items()) + [("key", k) for k in _keys(form.text)]
        checked = pages.post(
            VISIT,
            content=str(httpx.QueryParams(body)).encode(),
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "accept-language": "de-DE",
            },
        )
        assert checked.status_code == 200
        assert "Was das Erfassen des Besuchs bewirken würde" in checked.text
        assert "Prüfen, was es auslöst" in checked.text

    def test_a_row_changed_meanwhile_is_a_412_and_saves_nothing(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        form = pages.get(VISIT)
        keys = _keys(form.text)
        fields = _form_fields(form.text)
        fields[f"version:{keys[0]}"] = str(int(fields[f"version:{keys[0]}"]) + 5)
        before = _written(site_db)
        refused = _post_visit(pages, fields, keys)
        assert refused.status_code == 412
        assert _written(site_db) == before
        assert "someone changed an assessment of this visit" in refused.text


class TestBulkMissed:
    def test_ticked_overdue_rows_are_missed_with_one_reason(
        self, pages: TestClient, site_db: SiteDb, nurse: str
    ) -> None:
        page = pages.get("/sites/Rome/due").text
        keys = ["ROM-101:1:car_clonality:6", "ROM-101:1:growth:7"]
        body = [("csrf_token", nurse), ("reason", "patient moved abroad for a year")]
        for key in keys:
            version = re.search(rf'name="version:{re.escape(key)}" value="(\d+)"', page)
            assert version is not None
            body += [("key", key), (f"version:{key}", version.group(1))]
        audits_before = _written(site_db)[1]
        done = pages.post(
            "/sites/Rome/due/missed",
            content=str(httpx.QueryParams(body)).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 303
        rows = _rows(site_db)
        for key in keys:
            assert (rows[key].status, rows[key].status_reason) == (
                "missed",
                "patient moved abroad for a year",
            )
        assert _written(site_db)[1] >= audits_before + 2  # an audit row per item
        after = pages.get(done.headers["location"]).text
        assert "2 assessments marked missed" in after

    def test_no_reason_marks_nothing(self, pages: TestClient, site_db: SiteDb, nurse: str) -> None:
        before = _written(site_db)
        refused = pages.post(
            "/sites/Rome/due/missed",
            data={"csrf_token": nurse, "key": "ROM-101:1:growth:7", "reason": " "},
        )
        assert refused.status_code == 422
        assert 'aria-invalid="true" aria-describedby="e-bulk-reason"' in refused.text
        assert _written(site_db) == before

    def test_pharmacovigilance_may_not(self, pages: TestClient, site_db: SiteDb) -> None:
        sign_in_as(pages, "pharmacovigilance")
        token = csrf_of(pages.get("/", follow_redirects=True))
        refused = pages.post(
            "/sites/Rome/due/missed",
            data={"csrf_token": token, "key": "ROM-101:1:growth:7", "reason": "x"},
        )
        assert refused.status_code == 403

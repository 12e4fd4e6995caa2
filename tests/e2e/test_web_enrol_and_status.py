"""An investigator's patient work in a real browser, on a phone (390 px) and a desktop (1280 px).

Search the patient list, enrol a patient after previewing the calendar it gets, then
withdraw the patient with a reason. Screenshots of each step go to ``tests/e2e/artifacts/``.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from live_server import LiveServer
from playwright.sync_api import Browser, Page, expect

INVESTIGATOR = "investigator.rome@demo.invalid"
OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def _sign_in(page: Page, server: LiveServer) -> None:
    page.goto(server.base_url + "/login")
    page.get_by_label("Email").fill(INVESTIGATOR)
    page.get_by_label("Password").fill(server.passwords[INVESTIGATOR])
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def _shot(page: Page, folder: Path, name: str, width: int) -> None:
    assert page.evaluate(OVERFLOW) <= 0, f"{name} scrolls sideways at {width} px"
    page.screenshot(path=folder / f"{name}-{width}.png", full_page=True)


@pytest.mark.parametrize("width", [390, 1280])
def test_search_enrol_with_preview_then_withdraw(
    browser: Browser, live_server: LiveServer, artifacts: Path, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 860}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _sign_in(page, live_server)
        page.get_by_role("link", name="Patients · Rome").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Patients · Rome")
        page.get_by_label("Study id contains").fill("rom-00")
        page.get_by_role("button", name="Search").click()
        expect(page).to_have_url(re.compile(r"q=rom-00"))
        rows = page.locator(".patient-list tbody tr")
        expect(rows.first).to_contain_text("ROM-00")
        _shot(page, artifacts, "patients-search", width)

        study_id = f"ROM-W{width}"
        today = date.today()
        page.get_by_role("link", name="Enrol a patient").click()
        page.get_by_label("Study id").fill(study_id)
        page.get_by_label("Birth date").fill("2015-05-05")
        page.get_by_label("Sex").select_option("F")
        page.get_by_label("Protocol").select_option("cd19-car-t-pediatric-autoimmune")
        page.get_by_label("Diagnosis").select_option("sle")
        page.get_by_label("Infusion date").fill((today - timedelta(days=20)).isoformat())
        page.get_by_role("button", name="Preview calendar").click()
        preview = page.locator("#preview")
        expect(preview).to_contain_text("The calendar enrolling would create")
        expect(preview).to_contain_text(f"assessments for {study_id}")
        expect(page.get_by_label("Study id")).to_have_value(study_id)  # the form kept it
        _shot(page, artifacts, "enrol-preview", width)

        page.get_by_role("button", name="Enrol", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Patient {study_id}")
        expect(page.locator(".flash-success")).to_contain_text(f"Enrolled {study_id}")

        page.get_by_role("link", name="Change status").click()
        page.get_by_label("Withdrawn (consent withdrawn)").check()
        page.get_by_label("Reason").fill("Family moved abroad; consent withdrawn")
        _shot(page, artifacts, "status-form", width)
        page.get_by_role("button", name="Change the status").click()
        expect(page.locator(".flash-success")).to_contain_text(f"{study_id}: withdrawn")
        expect(page.locator(".patient-status")).to_contain_text("withdrawn")
        audit = page.locator("#audit-trail tbody tr").filter(has_text="change status").first
        expect(audit).to_contain_text("Family moved abroad; consent withdrawn")
        _shot(page, artifacts, "status-changed", width)
    finally:
        context.close()

"""An investigator's patient work in a real browser, on a phone (390 px) and a laptop
(1280 px), in English and in Italian or German (the language the browser asks for).

Search the patient list, enrol a patient after previewing the calendar it gets, then
withdraw the patient with a reason. Buttons, links and fields are found by their names in
the page's language, taken from the catalogs; axe-core finds no critical or serious
violation on each page; no page scrolls sideways. Screenshots of each step go to
``tests/e2e/artifacts/`` (``<step>-<width>-<language>.png``).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from live_server import LiveServer
from page_words import Say, language, wording
from playwright.sync_api import Browser, Page, expect
from test_web_every_page_a11y import SIDEWAYS, blocking_violations, sign_in

INVESTIGATOR = "investigator.rome@demo.invalid"
# (width, browser language): English at both widths, Italian on a phone, German on a laptop.
RUNS = [(390, "en-GB"), (1280, "en-GB"), (390, "it-IT"), (1280, "de-DE")]


def _shot(page: Page, folder: Path, name: str, tag: str) -> None:
    """A full-page screenshot; then axe's blocking findings and sideways scrolling."""
    # A patient page is long: its full-page screenshot takes a while on a loaded machine.
    page.screenshot(path=folder / f"{name}-{tag}.png", full_page=True, timeout=60_000)
    assert blocking_violations(page) == [], name
    assert page.evaluate(SIDEWAYS) <= 0, f"{name} scrolls sideways at {tag}"


@pytest.mark.parametrize(
    ("width", "locale"), RUNS, ids=["phone-en", "laptop-en", "phone-it", "laptop-de"]
)
def test_search_enrol_with_preview_then_withdraw(
    browser: Browser, live_server: LiveServer, artifacts: Path, width: int, locale: str
) -> None:
    say: Say = wording(locale)
    lang = language(locale)
    tag = f"{width}-{lang}"
    context = browser.new_context(viewport={"width": width, "height": 860}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, live_server, INVESTIGATOR)
        expect(page.locator("html")).to_have_attribute("lang", lang)
        page.get_by_role("link", name=say("Patients · {site}", site="Rome"), exact=True).click()
        heading = say("Patients · %(site)s", site="Rome")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        page.get_by_label(say("Study id contains")).fill("rom-00")
        page.get_by_role("button", name=say("Search"), exact=True).click()
        expect(page).to_have_url(re.compile(r"q=rom-00"))
        rows = page.locator(".patient-list tbody tr")
        expect(rows.first).to_contain_text("ROM-00")
        _shot(page, artifacts, "patients-search", tag)

        study_id = f"ROM-W{width}-{lang.upper()}"
        today = date.today()
        page.get_by_role("link", name=say("Enrol a patient"), exact=True).click()
        page.get_by_label(say("Study id"), exact=True).fill(study_id)
        page.get_by_label(say("Birth date"), exact=True).fill("2015-05-05")
        page.get_by_label(say("Sex"), exact=True).select_option("F")
        page.get_by_label(say("Protocol"), exact=True).select_option(
            "cd19-car-t-pediatric-autoimmune"
        )
        page.get_by_label(say("Diagnosis"), exact=True).select_option("sle")
        infused = today - timedelta(days=20)
        page.get_by_label(say("Infusion date"), exact=True).fill(infused.isoformat())
        page.get_by_role("button", name=say("Preview calendar"), exact=True).click()
        preview = page.locator("#preview")
        expect(preview.locator("h2")).to_have_text(say("The calendar enrolling would create"))
        expect(preview.get_by_role("status")).to_contain_text(study_id)
        expect(preview.locator(".preview-table tbody tr").first).to_be_visible()
        # The form kept what was typed.
        expect(page.get_by_label(say("Study id"), exact=True)).to_have_value(study_id)
        expect(page.get_by_label(say("Infusion date"), exact=True)).to_have_value(
            infused.isoformat()
        )
        _shot(page, artifacts, "enrol-preview", tag)

        page.get_by_role("button", name=say("Enrol"), exact=True).click()
        patient = say("Patient %(id)s", id=study_id)
        expect(page.get_by_role("heading", level=1)).to_have_text(patient)
        enrolled = say("Enrolled {study_id} at {site}.", study_id=study_id, site="Rome")
        expect(page.locator(".flash-success")).to_contain_text(enrolled)

        page.get_by_role("link", name=say("Change status"), exact=True).click()
        page.get_by_label(say("Withdrawn (consent withdrawn)"), exact=True).check()
        page.get_by_label(say("Reason"), exact=True).fill("Family moved abroad; consent withdrawn")
        _shot(page, artifacts, "status-form", tag)
        page.get_by_role("button", name=say("Change the status"), exact=True).click()
        withdrawn = say(
            "{study_id}: {status_label} since {since_day}.",
            study_id=study_id,
            status_label="withdrawn",
            since_day=today.isoformat(),
        )
        expect(page.locator(".flash-success")).to_contain_text(withdrawn)
        status = page.locator(".patient-status")
        expect(status).to_have_class(re.compile(r"\bstatus-withdrawn\b"))
        expect(status).to_contain_text(say("withdrawn"))
        audit = page.locator("#audit-trail tbody tr")
        expect(
            audit.filter(has_text="Family moved abroad; consent withdrawn").first
        ).to_be_visible()
        _shot(page, artifacts, "status-changed", tag)
    finally:
        context.close()

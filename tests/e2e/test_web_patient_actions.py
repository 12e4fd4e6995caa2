"""The patient page as a nurse acts from it, on a phone (390 px) and a laptop (1280 px), in
English and in German: she opens a patient (as the alert email links), reads why a date is
due, tabs to a timeline mark and sees its details, books one assessment inside its window
and records another. axe-core finds no critical or serious violation on the pages she
sees. Its own demo server: the bookings and recordings must not change what the other
browser tests see. Screenshots: ``tests/e2e/artifacts/patient-actions-<lang>-<width>-*.png``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from live_server import LiveServer, demo_server
from playwright.sync_api import Browser, Page, expect

NURSE = "nurse.rome@demo.invalid"
BLOCKING = ("critical", "serious")
_AXE = Axe()
WORDS = {
    "en": {"book": "Book this day", "booked": "Booked:", "today": "Completed today",
           "other": "Other outcome or reschedule", "reschedule": "Reschedule or record",
           "window": "window −", "recorded": "Recorded:"},
    "de": {"book": "Diesen Tag buchen", "booked": "Gebucht:", "today": "Heute erledigt",
           "other": "Anderes Ergebnis oder verschieben", "reschedule": "Verschieben oder erfassen",
           "window": "Zeitfenster −", "recorded": "Recorded:"},
}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with demo_server(tmp_path_factory.mktemp("patient-actions") / "actions.db") as live:
        yield live


def _blocking(page: Page) -> list[str]:
    results: Any = _AXE.run(page).response
    return [
        f"{v['impact']} {v['id']}: {[n['target'] for n in v['nodes'][:3]]}"
        for v in results["violations"]
        if v["impact"] in BLOCKING
    ]


@pytest.mark.parametrize(("lang", "width"), [("en", 390), ("de", 1280), ("en", 1280), ("de", 390)])
def test_a_nurse_acts_from_the_patient_page(
    browser: Browser, server: LiveServer, artifacts: Path, lang: str, width: int
) -> None:
    words = WORDS[lang]
    context = browser.new_context(
        viewport={"width": width, "height": 900}, locale={"en": "en-GB", "de": "de-DE"}[lang]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    shot = f"patient-actions-{lang}-{width}"
    violations: dict[str, list[str]] = {}
    try:
        page.goto(server.base_url + "/login")
        page.locator("input[name=email]").fill(NURSE)
        page.locator("input[name=password]").fill(server.passwords[NURSE])
        page.locator("form button[type=submit]").first.click()
        expect(page).not_to_have_url(re.compile(r"/login"))

        # The patient the alert email is about: the first overdue one on the due list.
        page.goto(server.base_url + "/sites/Rome/due")
        href = page.locator("#table-overdue tbody a[href^='/patients/']").first.get_attribute(
            "href"
        )
        assert href
        page.goto(server.base_url + href)
        expect(page.locator("html")).to_have_attribute("lang", lang)
        violations["patient"] = _blocking(page)

        # Why a date: each row says it in words.
        first_row = page.locator("table.calendar-table tbody tr").first
        expect(first_row.locator(".why")).to_contain_text(words["window"])

        # Tab to a timeline mark: its details show (no script).
        page.locator(".timeline-scroll").first.focus()
        page.keyboard.press("Tab")
        mark = page.locator(".timeline-svg .m:focus")
        expect(mark).to_have_count(1)
        expect(mark.locator(".tip")).to_be_visible()
        mark.scroll_into_view_if_needed()
        page.screenshot(path=artifacts / f"{shot}-1-timeline-focus.png")

        # Book an upcoming assessment on the last day of its window.
        page.locator("details.upcoming-list > summary").click()
        page.get_by_role("link", name=words["reschedule"]).first.click()
        book = page.locator("form#book")
        latest = book.locator("input[name=on]").get_attribute("max")
        assert latest
        book.locator("input[name=on]").fill(latest)
        book.get_by_role("button", name=words["book"]).click()
        expect(page.locator(".flash-success")).to_contain_text(words["booked"])
        page.locator("details.upcoming-list > summary").click()
        expect(page.locator(".booked").first).to_be_visible()

        # Record another, due or overdue, as completed today.
        due_row = page.locator(
            "table.calendar-table tr.state-overdue, table.calendar-table tr.state-due"
        ).first
        name = due_row.locator("th.assessment").inner_text()
        due_row.get_by_role("button", name=words["today"]).click()
        expect(page.locator(".flash")).to_be_visible()
        assert name
        page.screenshot(path=artifacts / f"{shot}-2-after.png", full_page=True)
        violations["patient after"] = _blocking(page)

        # The item page of a recorded one: correct (its own page), axe there too.
        page.get_by_role("link", name=words["other"]).first.click()
        expect(page.locator("form#book")).to_be_visible()
        violations["item"] = _blocking(page)
        page.screenshot(path=artifacts / f"{shot}-3-item.png", full_page=True)
    finally:
        context.close()
    assert {k: v for k, v in violations.items() if v} == {}

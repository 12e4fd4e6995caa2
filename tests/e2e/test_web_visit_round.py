"""The nurse's round by card, in a real browser: record a whole visit on one form from a
due-list card (after checking what its results start), then mark overdue rows missed
together with one reason — on a phone in English and on a laptop in Italian. axe-core
checks the grouped due list, the visit form and its preview (no critical or serious
violation); screenshots go to ``tests/e2e/artifacts/``.

The server is this module's own demo (the round changes its data)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import LiveServer, demo_server
from playwright.sync_api import Browser, Page, expect
from test_web_every_page_a11y import SIDEWAYS, blocking_violations, sign_in

NURSE = "nurse.rome@demo.invalid"
# (width, browser language, words the page must use): one run per language.
RUNS = [
    (390, "en-GB", {"record": "Recorded the visit", "missed": "marked missed"}),
    (1280, "it-IT", {"record": "Registrat", "missed": "mancat"}),
]
# Every value of the visit form's rows (outcome, result, date, reason, note), in order.
TYPED = """items => items.flatMap(item => [...item.querySelectorAll(
    'select[name*=":"], input[name*=":"]:not([type=hidden])')].map(f => f.name + '=' + f.value))"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with demo_server(tmp_path_factory.mktemp("e2e-visits") / "demo.db") as live:
        yield live


def _fill_visit(page: Page) -> int:
    """Complete every row: a coded result as negative, a measured one as 1000 in the unit
    offered first. Returns how many rows are recorded."""
    recorded = 0
    for item in page.locator(".visit-item").all():
        outcome = item.locator("select[name^='outcome:']")
        coded = item.locator("select[name^='result:']")
        measured = item.locator("input[name^='result:']:not([type=hidden])")
        if measured.count():
            measured.first.fill("1000")
        elif coded.count():
            choices = [
                v
                for v in coded.locator("option").evaluate_all(
                    "options => options.map(o => o.value)"
                )
                if v
            ]
            coded.select_option("negative" if "negative" in choices else choices[0])
        outcome.select_option("completed")
        recorded += 1
    return recorded


@pytest.mark.parametrize(("width", "locale", "words"), RUNS, ids=["phone-en", "laptop-it"])
def test_a_visit_on_one_form_then_overdue_rows_missed_together(
    browser: Browser,
    server: LiveServer,
    artifacts: Path,
    width: int,
    locale: str,
    words: dict[str, str],
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, server, NURSE)
        page.goto(server.base_url + "/sites/Rome/due")
        tag = f"{width}-{locale[:2]}"
        assert blocking_violations(page) == []
        assert width > 400 or page.evaluate(SIDEWAYS) == 0

        # A card's visit: all of the patient's items in that window, on one form.
        link = page.locator("a.visit-record").first
        expect(link).to_be_visible()
        link.click()
        expect(page).to_have_url(re.compile(r"/patients/[^/]+/visits/\d{4}-\d{2}-\d{2}"))
        page.screenshot(path=artifacts / f"visit-form-{tag}.png", full_page=True)
        assert blocking_violations(page) == []
        assert width > 400 or page.evaluate(SIDEWAYS) == 0
        recorded = _fill_visit(page)
        assert recorded >= 1
        typed = page.locator(".visit-item").evaluate_all(TYPED)

        # "Check what it starts": the form again, as typed, with each result's effects.
        page.locator("main form button[name=intent][value=preview]").click()
        preview = page.locator("#visit-preview")
        expect(preview).to_be_visible()
        expect(preview.locator(".visit-effects > li")).to_have_count(recorded)
        expect(page.locator("html")).to_have_attribute("lang", locale[:2])
        assert page.locator(".visit-item").evaluate_all(TYPED) == typed
        page.screenshot(path=artifacts / f"visit-preview-{tag}.png", full_page=True)
        assert blocking_violations(page) == []
        assert width > 400 or page.evaluate(SIDEWAYS) == 0
        page.locator("main form button[name=intent][value=save]").click()
        expect(page).to_have_url(re.compile(r"/sites/Rome/due"))
        expect(page.locator(".flash")).to_contain_text(words["record"])

        # Overdue rows ticked on their cards, one reason, one submit.
        boxes = page.locator("#table-overdue input[type=checkbox][form=bulk-missed]")
        assert boxes.count() >= 1
        key = boxes.first.get_attribute("value")
        boxes.first.check()
        page.locator("#bulk-reason").fill("Patient travelling; visit not possible in window")
        page.locator("#bulk-missed button[type=submit]").click()
        expect(page.locator(".flash")).to_contain_text(words["missed"])
        expect(page.locator(f"#table-overdue input[value='{key}']")).to_have_count(0)
        page.screenshot(path=artifacts / f"visit-round-after-{tag}.png", full_page=True)
    finally:
        context.close()

"""A positive RCL result recorded, checked, and corrected, in a real browser.

The Rome nurse records a due RCL test as positive with the coded choice, first asking what
it will start (a confirmation culture, intensified testing, the safety case); saves it;
then, on the patient's page, corrects it to negative with a reason, sees what that stops,
and finds the started work cancelled and both versions in the audit trail. Its own demo
server: the correction must not change what the other browser tests see.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import LiveServer, demo_server
from playwright.sync_api import Browser, Page, expect

NURSE = "nurse.rome@demo.invalid"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with demo_server(tmp_path / "typed-results.db") as live:
        yield live


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _sign_in(page: Page, server: LiveServer) -> None:
    page.goto(server.base_url + "/login")
    page.get_by_label("Email").fill(NURSE)
    page.get_by_label("Password").fill(server.passwords[NURSE])
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def test_a_positive_rcl_is_previewed_recorded_and_corrected(
    page: Page, server: LiveServer, artifacts: Path
) -> None:
    _sign_in(page, server)
    page.goto(server.base_url + "/sites/Rome/due?category=vector-safety")
    row = page.locator('#table-due tr[data-key*=":rcl_test:"]').first
    key = row.get_attribute("data-key")
    assert key is not None, "the demo has an RCL test due at Rome"
    study_id = key.split(":")[0]

    # The coded choice, and what it will start before anything is saved.
    row.locator("summary", has_text="Other outcome").click()
    form = row.locator("form.outcome-form")
    result = form.get_by_label("Result")
    expect(result.locator("option")).to_contain_text(["—", "Negative", "Positive"])
    result.select_option("positive")
    form.get_by_role("button", name="Check what it starts").click()

    row = page.locator(f'tr[data-key="{key}"]')
    effects = page.locator("tr.effects-row .effects")
    expect(effects).to_contain_text("positive: starts")
    expect(effects).to_contain_text("RCL confirmation")
    expect(effects).to_contain_text("opens a serious safety case")
    expect(row.get_by_label("Result")).to_have_value("positive")  # still as chosen
    page.screenshot(path=artifacts / "typed-result-preview.png", full_page=True)
    row.locator("form.outcome-form").get_by_role("button", name="Record").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Recorded: {study_id}")
    expect(page.locator(".flash-success")).to_contain_text("opens a serious safety case")

    # The patient's page: correct it to negative, with a reason, checking first.
    page.goto(f"{server.base_url}/patients/{study_id}")
    recorded = page.locator(f'tr[data-key="{key}"]')
    expect(recorded).to_contain_text("positive")
    started = page.locator('tr[data-key*=":rcl_confirm:"]')
    expect(started.first).to_contain_text("Due now")
    recorded.get_by_role("link", name="Correct").click()  # the form is on the item's page
    correction = page.locator("form#correct")
    correction.get_by_label("Result").select_option("negative")
    correction.get_by_label("Reason for the correction").fill("lab report misread")
    correction.get_by_role("button", name="Check what it changes").click()

    correction = page.locator("form#correct")
    expect(page.locator(".effects")).to_contain_text("corrected to negative: stops")
    expect(correction.get_by_label("Reason for the correction")).to_have_value("lab report misread")
    correction.get_by_role("button", name="Correct", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text(f"Corrected: {key}")

    # What the positive started and was still pending is cancelled, with the reason.
    cancelled = page.locator('tr[data-key*=":rcl_confirm:"]').first
    expect(cancelled).to_contain_text("Cancelled")
    expect(cancelled).to_contain_text("result corrected on")
    expect(page.locator(f'tr[data-key="{key}"]')).to_contain_text("negative")

    # Both versions in the audit trail: the recording and the correction, with its reason.
    trail = page.locator("#audit-trail tbody tr").filter(has_text=key)
    expect(trail.filter(has_text="result: positive → negative")).to_have_count(1)
    expect(trail.filter(has_text="lab report misread")).to_have_count(1)
    expect(trail.filter(has_text="status: pending → completed")).to_contain_text("positive")
    page.screenshot(path=artifacts / "typed-result-corrected.png", full_page=True)

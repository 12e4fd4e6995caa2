"""The nurse's round in a real browser, against a real server on the demo data.

Sign in as the Rome nurse, see an overdue item, record it completed, watch it leave the
overdue list, find the change in the patient's audit trail, fail to open an Erlangen
patient, sign out. Screenshots of the due list, the patient page and the dashboard at a
laptop and a tablet width go to ``tests/e2e/artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import LiveServer
from playwright.sync_api import Browser, Page, expect

NURSE = "nurse.rome@demo.invalid"
ADMIN = "admin@demo.invalid"
WIDTHS = (1280, 768)
UNLABELLED_FIELDS = """() => [
    ...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
    .map(el => el.outerHTML)"""


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def sign_in(page: Page, server: LiveServer, email: str) -> None:
    page.goto(server.base_url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(server.passwords[email])
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))
    page.wait_for_load_state()


def screenshots(page: Page, folder: Path, name: str) -> None:
    """The whole page, and its first screenful (readable at a glance), at each width."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=folder / f"{name}-{width}.png", full_page=True)
        page.screenshot(path=folder / f"{name}-{width}-top.png")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_the_nurses_round(page: Page, live_server: LiveServer, artifacts: Path) -> None:
    base = live_server.base_url
    sign_in(page, live_server, NURSE)
    expect(page).to_have_url(base + "/sites/Rome/due")
    expect(page.get_by_role("heading", level=1)).to_have_text("Due list · Rome")

    overdue = page.locator("#table-overdue tbody tr[data-key]")  # the items, not visit heads
    assert overdue.count() > 0, "the demo leaves recent work overdue at Rome"
    row = overdue.first
    key = row.get_attribute("data-key")
    assert key is not None
    study_id = key.split(":")[0]
    expect(row.locator(".days-overdue")).to_have_text(re.compile(r"\b\d+ d$"))

    row.get_by_role("button", name=re.compile("completed today")).click()
    expect(page.locator(".flash-success")).to_contain_text(f"Recorded: {study_id}")
    expect(page.locator(f'#table-overdue tr[data-key="{key}"]')).to_have_count(0)
    screenshots(page, artifacts, "due-list")

    page.get_by_role("link", name=study_id).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Patient {study_id}")
    entry = page.locator("#audit-trail tbody tr").filter(has_text=key).first
    expect(entry).to_contain_text(NURSE)
    expect(entry).to_contain_text("status: pending → completed")
    expect(page.locator("svg.timeline-svg")).to_have_count(2)
    expect(page.locator("svg.timeline-svg .today")).to_have_count(2)
    expect(page.locator("svg.timeline-svg .today-label").first).to_contain_text("today")
    screenshots(page, artifacts, "patient")

    response = page.goto(base + "/patients/ERL-001")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")

    page.goto(base + "/dashboard")
    expect(page.locator("#site-Rome")).to_be_visible()
    expect(page.locator("#site-Erlangen")).to_have_count(0)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(base + "/login")
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.goto(base + "/sites/Rome/due")
    expect(page).to_have_url(base + "/login?next=%2Fsites%2FRome%2Fdue")


def test_the_admins_dashboard(page: Page, live_server: LiveServer, artifacts: Path) -> None:
    sign_in(page, live_server, ADMIN)
    expect(page).to_have_url(live_server.base_url + "/dashboard")
    expect(page.locator("#site-Rome")).to_be_visible()
    expect(page.locator("#site-Erlangen")).to_be_visible()
    expect(page.locator(".summary-table tbody tr")).to_have_count(2)
    screenshots(page, artifacts, "dashboard")


def test_keyboard_and_labels(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server, NURSE)
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to main content")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("#main$"))
    for path in ("/sites/Rome/due", "/patients/ROM-001", "/dashboard", "/access"):
        page.goto(live_server.base_url + path)
        unlabelled = page.evaluate(UNLABELLED_FIELDS)
        assert unlabelled == [], path
        assert page.evaluate("document.documentElement.lang") == "en"
        expect(page.locator("thead th:not([scope])")).to_have_count(0)
        expect(page.locator("h1")).to_have_count(1)

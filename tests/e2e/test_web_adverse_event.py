"""Recording a serious adverse event in a real browser, and the safety system seeing it.

The Rome nurse opens a patient, fills the form for a serious infection and lands on the
case; a follow-up makes version 2 beside version 1; the pharmacovigilance feed (bearer
token) carries the case; the Rome investigator's dashboard shows it not yet acknowledged.
Screenshots at a laptop and a tablet width go to ``tests/e2e/artifacts/``.

This test runs its own demo server: it needs the server's database to issue the
pharmacovigilance token, and its new case should not change what the other tests see.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from live_server import LiveServer, demo_server
from playwright.sync_api import Browser, Locator, Page, expect

from surveillance.accounts.auth import create_token
from surveillance.kit.db import make_engine, write_session

NURSE = "nurse.rome@demo.invalid"
INVESTIGATOR = "investigator.rome@demo.invalid"
SAFETY = "pv@demo.invalid"
PATIENT = "ROM-002"  # the demo gave this child mild CRS only
WIDTHS = (1280, 768)
UNLABELLED_FIELDS = """() => [
    ...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
    .map(el => el.outerHTML)"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """A demo server of this module's own, and its database URL."""
    database = tmp_path_factory.mktemp("e2e-ae") / "demo.db"
    with demo_server(database) as live:
        yield live, f"sqlite:///{database}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def sign_in(page: Page, server: LiveServer, email: str) -> None:
    page.goto(server.base_url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(server.passwords[email])
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def screenshots(page: Page, folder: Path, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=folder / f"{name}-{width}.png", full_page=True)
        page.screenshot(path=folder / f"{name}-{width}-top.png")
    page.set_viewport_size({"width": 1280, "height": 900})


def element_screenshots(page: Page, element: Locator, folder: Path, name: str) -> None:
    """One part of a long page (the form on the patient page), at each width."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        element.screenshot(path=folder / f"{name}-{width}.png")
    page.set_viewport_size({"width": 1280, "height": 900})


def accessible(page: Page) -> None:
    assert page.evaluate(UNLABELLED_FIELDS) == [], page.url
    expect(page.locator("thead th:not([scope])")).to_have_count(0)
    expect(page.locator("h1")).to_have_count(1)


def feed_entries(base_url: str, token: str) -> list[dict[str, Any]]:
    """Every entry of the pharmacovigilance feed, page by page until caught up."""
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        params = {"cursor": cursor} if cursor else {}
        response = httpx.get(
            f"{base_url}/api/v1/feeds/adverse-events", params=params, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        entries += body["entries"]
        if not body["entries"] or body["next_cursor"] == cursor:
            return entries
        cursor = body["next_cursor"]


def test_a_serious_infection_from_the_form_to_the_feed(
    page: Page, browser: Browser, server: tuple[LiveServer, str], artifacts: Path
) -> None:
    live, database_url = server
    base = live.base_url
    today = datetime.now(ZoneInfo("Europe/Rome")).date()
    onset = (today - timedelta(days=3)).isoformat()

    sign_in(page, live, NURSE)
    page.goto(f"{base}/patients/{PATIENT}")
    listed = page.locator("#adverse-events tbody tr")
    before = listed.count()
    page.get_by_text("Record an adverse event").click()
    form = page.locator("#record-ae form")
    expect(form.get_by_label("Date the site learned of it")).to_have_value(today.isoformat())
    form.get_by_label("What happened").fill("Pneumonia")
    form.get_by_label("Category").select_option(label="Infection")
    form.get_by_label("Onset date").fill(onset)
    form.get_by_label("Grade", exact=True).select_option(label="3 – severe")
    expect(form.get_by_label("Grading scale")).to_have_value("ctcae_v5")
    form.get_by_label("Serious", exact=True).check()
    form.get_by_label("Hospitalisation, or a longer stay").check()
    form.get_by_label("Related to the therapy?").select_option(label="Possibly related")
    form.get_by_label("Outcome so far").select_option(label="Recovering")
    form.get_by_label("Narrative").fill("Fever and cough; admitted for IV antibiotics.")
    accessible(page)
    element_screenshots(page, page.locator("#adverse-events"), artifacts, "ae-form")

    # An end before the onset is refused by the server: the entries stay, the reason shows.
    form.get_by_label("End date").fill((today - timedelta(days=5)).isoformat())
    form.get_by_role("button", name="Record the adverse event").click()
    expect(page.locator("#record-ae .error-summary")).to_contain_text("End date:")
    expect(form.get_by_label("End date")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("What happened")).to_have_value("Pneumonia")
    expect(form.get_by_label("Hospitalisation, or a longer stay")).to_be_checked()
    accessible(page)
    element_screenshots(page, page.locator("#record-ae"), artifacts, "ae-form-refused")
    form.get_by_label("End date").fill("")

    form.get_by_role("button", name="Record the adverse event").click()
    expect(page).to_have_url(re.compile(rf"/adverse-events/{PATIENT}-AE\d+(#.*)?$"))
    case = re.search(rf"{PATIENT}-AE\d+", page.url)
    assert case is not None
    case_id = case.group(0)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Adverse event {case_id}")
    expect(page.locator(".flash-success")).to_contain_text(f"Recorded {case_id}: Pneumonia.")
    expect(page.locator(".ae-header .ae-serious")).to_have_text("Serious")
    expect(page.locator(".versions-table thead .version-head")).to_have_count(1)
    expect(page.locator(".deadlines-table tbody tr").first).to_be_visible()
    accessible(page)
    screenshots(page, artifacts, "ae-case")

    # A follow-up: recovered, with an end date; version 2 stands beside version 1.
    page.get_by_text("Open the follow-up form").click()
    follow_up = page.locator("#follow-up form")
    expect(follow_up.get_by_label("What happened")).to_have_value("Pneumonia")
    follow_up.get_by_label("Outcome so far").select_option(label="Recovered")
    follow_up.get_by_label("End date").fill(today.isoformat())
    follow_up.get_by_role("button", name="Save version 2").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Saved version 2 of {case_id}")
    expect(page.locator(".versions-table thead .version-head")).to_have_count(2)
    outcome = page.locator('.versions-table tr[data-field="outcome"] td')
    expect(outcome.nth(0)).not_to_have_class(re.compile("changed"))
    expect(outcome.nth(1)).to_have_class(re.compile("changed"))
    expect(outcome.nth(1)).to_contain_text("Recovered")
    screenshots(page, artifacts, "ae-case-2-versions")

    page.goto(f"{base}/patients/{PATIENT}")
    expect(listed).to_have_count(before + 1)
    expect(page.locator(f'#adverse-events tr[data-case="{case_id}"]')).to_contain_text("Serious")

    page.goto(f"{base}/sites/Rome/adverse-events")
    expect(page.locator(f'tr[data-case="{case_id}"]')).to_contain_text("Pneumonia")
    accessible(page)
    screenshots(page, artifacts, "ae-site-list")

    # The safety system's view: the feed, with a pharmacovigilance bearer token.
    engine = make_engine(database_url)
    try:
        with write_session(engine) as session:
            _, token = create_token(session, email=SAFETY, actor="e2e", now=datetime.now(UTC))
    finally:
        engine.dispose()
    entries = [e for e in feed_entries(base, token) if e["case_id"] == case_id]
    assert [(e["version"], e["change"]) for e in entries] == [(1, "created"), (2, "updated")]
    first = entries[0]["case"]
    assert (first["term"], first["category"], first["serious"]) == ("Pneumonia", "infection", True)
    assert first["seriousness_criteria"] == ["hospitalization"]
    assert entries[1]["case"]["outcome"] == "recovered"

    # The investigator's dashboard: serious, and not yet acknowledged by the safety system.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    try:
        investigator = context.new_page()
        sign_in(investigator, live, INVESTIGATOR)
        investigator.goto(f"{base}/dashboard")
        row = investigator.locator(f'#site-Rome .sae-table tr[data-case="{case_id}"]')
        expect(row).to_contain_text(SAFETY)
        expect(row).to_contain_text("not yet")
        screenshots(investigator, artifacts, "ae-dashboard")
        panel = investigator.locator("#site-Rome .sae-table")
        element_screenshots(investigator, panel, artifacts, "ae-dashboard-serious")
    finally:
        context.close()

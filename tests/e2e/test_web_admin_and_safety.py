"""An admin manages a webhook endpoint in the browser; pharmacovigilance reads the safety view.

At a phone's width (390 px) and a laptop's (1280 px): the admin's first URL is refused
beside the field, then an endpoint aimed at a real HTTP receiver on 127.0.0.1 is added
(this module's server allows private addresses, as SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE
does) and its secret is shown once; it is disabled, enabled again and its secret rotated.
The pharmacovigilance user lands on the safety cases and opens one. No page scrolls
sideways. Screenshots go to ``tests/e2e/artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import LiveServer, demo_server
from playwright.sync_api import Browser, Page, expect
from support.peers import Receiver, receiver  # noqa: F401 (fixture)

ADMIN = "admin@demo.invalid"
SAFETY = "pv@demo.invalid"
UNLABELLED_FIELDS = """() => [
    ...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
    .map(el => el.outerHTML)"""
# Sideways scrolling of the page itself (a table inside a scrolling box does not count).
PAGE_OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    database = tmp_path_factory.mktemp("e2e-admin") / "demo.db"
    with demo_server(database, webhook_allow_private=True) as live:
        yield live


@pytest.fixture(params=[390, 1280], ids=["phone", "laptop"])
def page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": request.param, "height": 900}, locale="en-GB")
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


def checked(page: Page, artifacts: Path, name: str) -> None:
    """Labelled fields, one h1, no sideways page scroll; then a full-page screenshot."""
    assert page.evaluate(UNLABELLED_FIELDS) == [], page.url
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("thead th:not([scope])")).to_have_count(0)
    assert page.evaluate(PAGE_OVERFLOW) <= 0, page.url
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=artifacts / f"{name}-{width}.png", full_page=True)


def test_an_admin_adds_disables_enables_and_rotates_a_webhook(
    page: Page,
    server: LiveServer,
    receiver: Receiver,  # noqa: F811 (the fixture imported above)
    artifacts: Path,
) -> None:
    sign_in(page, server, ADMIN)
    page.get_by_role("link", name="Webhooks").click()
    expect(page.locator("h1")).to_have_text("Webhook endpoints")
    form = page.locator(".wh-add form")

    # A URL that is not http(s): refused beside the field, the choices kept.
    form.get_by_label("URL").fill("ftp://" + receiver.url.removeprefix("http://"))
    form.get_by_label("adverse_event.serious").check()
    form.get_by_role("button", name="Add endpoint").click()
    expect(page.locator("#wh-url-error")).to_contain_text("only http and https")
    expect(form.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("adverse_event.serious")).to_be_checked()
    checked(page, artifacts, "webhook-refused")

    form.get_by_label("URL").fill(receiver.url)
    form.get_by_label("assessment.overdue").check()
    form.get_by_label("Site").select_option("Rome")
    form.get_by_role("button", name="Add endpoint").click()
    secret_box = page.get_by_label("Secret", exact=True)
    expect(secret_box).to_have_value(re.compile(r"^whsec_"))
    expect(page.locator(".wh-secret")).to_contain_text("shown this once")
    first_secret = secret_box.input_value()
    card = page.locator(".wh-card", has_text=receiver.url).last
    endpoint_id = card.get_attribute("data-endpoint")
    assert endpoint_id
    expect(card.locator(".wh-state")).to_have_text("enabled")
    checked(page, artifacts, "webhook-added")

    card.get_by_role("button", name=f"Disable {endpoint_id}").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Disabled {endpoint_id}")
    card = page.locator(f'.wh-card[data-endpoint="{endpoint_id}"]')
    expect(card.locator(".wh-state")).to_have_text("disabled")
    expect(page.get_by_label("Secret", exact=True)).to_have_count(0)  # not shown again

    card.get_by_role("button", name=f"Enable {endpoint_id}").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Enabled {endpoint_id}")
    expect(card.locator(".wh-state")).to_have_text("enabled")

    card.get_by_role("button", name=f"Rotate the secret of {endpoint_id}").click()
    expect(page.locator(".wh-secret h2")).to_contain_text("New signing secret")
    rotated = page.get_by_label("Secret", exact=True).input_value()
    assert rotated.startswith("whsec_")
    assert rotated != first_secret
    expect(page.locator(".wh-secret")).to_contain_text("The old secret also signs until")
    checked(page, artifacts, "webhook-rotated")


def test_pharmacovigilance_reads_the_safety_cases_and_opens_one(
    page: Page, server: LiveServer, artifacts: Path
) -> None:
    sign_in(page, server, SAFETY)
    expect(page).to_have_url(re.compile(r"/safety$"))
    rows = page.locator(".safety-table tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 2
    expect(page.locator("main form[method=post]")).to_have_count(0)  # read-only
    checked(page, artifacts, "safety-cases")

    page.get_by_label("Serious only").check()
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"serious=1"))
    serious = page.locator(".safety-table tbody tr")
    expect(serious.first).to_be_visible()
    assert serious.count() <= rows.count()
    for badge in serious.locator(".ae-serious").all():
        expect(badge).to_have_text("Serious")

    link = serious.first.locator("a").first
    case_id = link.inner_text()
    link.click()
    expect(page.locator("h1")).to_have_text(f"Safety case {case_id}")
    expect(page.locator(".versions-table .version-head").first).to_contain_text("Version 1")
    expect(page.locator("#h-acks")).to_be_visible()
    expect(page.locator("main form[method=post]")).to_have_count(0)
    checked(page, artifacts, "safety-case")

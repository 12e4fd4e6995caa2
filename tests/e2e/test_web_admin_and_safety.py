"""An admin manages a webhook endpoint in the browser; pharmacovigilance reads the safety view.

At a phone's width (390 px) and a laptop's (1280 px), in English and in Italian or German
(the language the browser asks for): the admin's first URL is refused beside the field,
then an endpoint aimed at a real HTTP receiver on 127.0.0.1 is added (this module's server
allows private addresses, as SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE does) and its secret is
shown once; it is disabled, enabled again and its secret rotated. The pharmacovigilance
user lands on the safety cases and opens one. Buttons, links and fields are found by their
names in the page's language (from the catalogs); axe-core finds no critical or serious
violation; no page scrolls sideways. Screenshots go to ``tests/e2e/artifacts/``
(``<step>-<width>-<language>.png``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from live_server import LiveServer, demo_server
from page_words import Say, language, wording
from playwright.sync_api import Browser, Page, expect
from support.peers import Receiver, receiver  # noqa: F401 (fixture)
from test_web_every_page_a11y import blocking_violations, sign_in

ADMIN = "admin@demo.invalid"
SAFETY = "pv@demo.invalid"
UNLABELLED_FIELDS = """() => [
    ...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
    .map(el => el.outerHTML)"""
# Sideways scrolling of the page itself (a table inside a scrolling box does not count).
PAGE_OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
# (width, browser language): English at both widths, Italian on a phone, German on a laptop.
RUNS = [(390, "en-GB"), (1280, "en-GB"), (390, "it-IT"), (1280, "de-DE")]


@dataclass(frozen=True)
class Run:
    page: Page
    say: Say  # the page's words, in its language
    tag: str  # "390-it": the screenshots' suffix


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    database = tmp_path_factory.mktemp("e2e-admin") / "demo.db"
    with demo_server(database, webhook_allow_private=True) as live:
        yield live


@pytest.fixture(params=RUNS, ids=["phone-en", "laptop-en", "phone-it", "laptop-de"])
def run(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Run]:
    width, locale = request.param
    context = browser.new_context(viewport={"width": width, "height": 900}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield Run(page, wording(locale), f"{width}-{language(locale)}")
    context.close()


def checked(run: Run, artifacts: Path, name: str) -> None:
    """A full-page screenshot; then labelled fields, one h1, the page's language, no
    sideways page scroll, and no critical or serious axe finding."""
    page = run.page
    page.screenshot(path=artifacts / f"{name}-{run.tag}.png", full_page=True, timeout=60_000)
    assert page.evaluate(UNLABELLED_FIELDS) == [], page.url
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("thead th:not([scope])")).to_have_count(0)
    expect(page.locator("html")).to_have_attribute("lang", run.tag.split("-")[1])
    assert page.evaluate(PAGE_OVERFLOW) <= 0, page.url
    assert blocking_violations(page) == [], page.url


def test_an_admin_adds_disables_enables_and_rotates_a_webhook(
    run: Run,
    server: LiveServer,
    receiver: Receiver,  # noqa: F811 (the fixture imported above)
    artifacts: Path,
) -> None:
    page, say = run.page, run.say
    sign_in(page, server, ADMIN)
    page.get_by_role("link", name=say("Webhooks"), exact=True).click()
    expect(page.locator("h1")).to_have_text(say("Webhook endpoints"))
    form = page.locator(".wh-add form")
    url = form.get_by_label(say("URL"), exact=True)

    # A URL that is not http(s): refused beside the field, the choices kept.
    url.fill("ftp://" + receiver.url.removeprefix("http://"))
    form.get_by_label("adverse_event.serious").check()
    form.get_by_role("button", name=say("Add endpoint"), exact=True).click()
    expect(page.locator("#wh-url-error")).to_contain_text("ftp://")
    expect(url).to_have_attribute("aria-invalid", "true")
    expect(url).to_have_attribute("aria-describedby", re.compile(r"\bwh-url-error\b"))
    expect(form.get_by_label("adverse_event.serious")).to_be_checked()
    checked(run, artifacts, "webhook-refused")

    url.fill(receiver.url)
    form.get_by_label("assessment.overdue").check()
    form.get_by_label(say("Site"), exact=True).select_option("Rome")
    form.get_by_role("button", name=say("Add endpoint"), exact=True).click()
    secret_box = page.get_by_label(say("Secret"), exact=True)
    expect(secret_box).to_have_value(re.compile(r"^whsec_"))
    expect(page.locator(".wh-secret")).to_contain_text(say("Copy it now: it is shown this once."))
    first_secret = secret_box.input_value()
    card = page.locator(".wh-card", has_text=receiver.url).last
    endpoint_id = card.get_attribute("data-endpoint")
    assert endpoint_id
    expect(card.locator(".wh-state")).to_have_text(say("enabled"))
    checked(run, artifacts, "webhook-added")

    card.get_by_role("button", name=say("Disable %(id)s", id=endpoint_id), exact=True).click()
    disabled = say(
        "Disabled {endpoint}. Its alerts are held (kept) until it is enabled and replayed.",
        endpoint=endpoint_id,
    )
    expect(page.locator(".flash-success")).to_have_text(disabled)
    card = page.locator(f'.wh-card[data-endpoint="{endpoint_id}"]')
    expect(card.locator(".wh-state")).to_have_text(say("disabled"))
    expect(page.get_by_label(say("Secret"), exact=True)).to_have_count(0)  # not shown again

    card.get_by_role("button", name=say("Enable %(id)s", id=endpoint_id), exact=True).click()
    enabled = say(
        "Enabled {endpoint}. Alerts held while it was disabled are sent after a replay.",
        endpoint=endpoint_id,
    )
    expect(page.locator(".flash-success")).to_have_text(enabled)
    expect(card.locator(".wh-state")).to_have_text(say("enabled"))

    rotate = say("Rotate the secret of %(id)s", id=endpoint_id)
    card.get_by_role("button", name=rotate, exact=True).click()
    expect(page.locator(".wh-secret h2")).to_contain_text(endpoint_id)
    rotated = page.get_by_label(say("Secret"), exact=True).input_value()
    assert rotated.startswith("whsec_")
    assert rotated != first_secret
    expect(page.locator(".wh-secret .hint")).to_contain_text("UTC")  # the old one's end
    checked(run, artifacts, "webhook-rotated")


def test_pharmacovigilance_reads_the_safety_cases_and_opens_one(
    run: Run, server: LiveServer, artifacts: Path
) -> None:
    page, say = run.page, run.say
    sign_in(page, server, SAFETY)
    expect(page).to_have_url(re.compile(r"/safety$"))
    expect(page.locator("h1")).to_have_text(say("Safety cases"))
    rows = page.locator(".safety-table tbody tr")
    expect(rows.first).to_be_visible()
    every = rows.count()
    assert every >= 2
    expect(page.locator("main form[method=post]")).to_have_count(0)  # read-only
    checked(run, artifacts, "safety-cases")

    page.get_by_label(say("Serious only"), exact=True).check()
    page.get_by_role("button", name=say("Apply"), exact=True).click()
    expect(page).to_have_url(re.compile(r"serious=1"))
    serious = page.locator(".safety-table tbody tr")
    expect(serious.first).to_be_visible()
    assert serious.count() <= every
    for badge in serious.locator(".ae-serious").all():
        expect(badge).to_have_text(say("Serious"))
    expect(serious.locator(".ae-non-serious")).to_have_count(0)

    link = serious.first.locator("a").first
    case_id = link.inner_text()
    link.click()
    expect(page.locator("h1")).to_have_text(say("Safety case %(case)s", case=case_id))
    first_version = say("Version %(version)s", version=1)
    expect(page.locator(".versions-table .version-head").first).to_contain_text(first_version)
    expect(page.locator("#h-acks")).to_be_visible()
    expect(page.locator("main form[method=post]")).to_have_count(0)
    checked(run, artifacts, "safety-case")

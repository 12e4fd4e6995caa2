"""Every page, as each role sees it, on a phone (390 px) and a laptop (1280 px).

For each page: axe-core finds no critical or serious violation, nothing makes the page
scroll sideways at 390 px, and a screenshot goes to ``tests/e2e/artifacts/`` (named
``a11y-<role>-<page>-<width>.png``). At 390 px each due-list item is a card whose actions are
on screen; the due list and the patient page print on A4 without the controls.

axe-core comes from the ``axe-playwright-python`` package (its bundled ``axe.min.js``), so
nothing is fetched while the tests run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from live_server import LiveServer, demo_server
from playwright.sync_api import Browser, Page, expect

import rules
from surveillance.alerting.dispatch import DispatchConfig, dispatch
from surveillance.alerting.scan import scan
from surveillance.kit.db import make_engine, write_session

NURSE = "nurse.rome@demo.invalid"
INVESTIGATOR = "investigator.erlangen@demo.invalid"
ADMIN = "admin@demo.invalid"
SAFETY = "pv@demo.invalid"
PHONE, LAPTOP = 390, 1280
BLOCKING = ("critical", "serious")
SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
_AXE = Axe()

# A page: its name in the screenshot, its path (or how to find it from the page before),
# and the status it should answer with.
Finder = Callable[[Page, str, str], str]
PageSpec = tuple[str, str | Finder, int]


def _first_link(listing: str, selector: str) -> Finder:
    """The href of the first ``selector`` on ``listing``: the demo's ids are not fixed."""

    def find(page: Page, base: str, site: str) -> str:
        page.goto(base + listing.format(site=site))
        href = page.locator(selector).first.get_attribute("href")
        assert href, f"no {selector} on {listing}"
        return href

    return find


_PATIENT = _first_link("/sites/{site}/due", "#table-overdue tbody a[href^='/patients/']")
_CASE = _first_link("/sites/{site}/adverse-events", ".ae-table a[href^='/adverse-events/']")
_MAIL = _first_link("/mail", ".mail-table a[href^='/mail/']")
_VISIT = _first_link("/sites/{site}/due", "a[href*='/visits/']")
_REINFUSION = _first_link("/patients/ROM-004", "a[href$='/infusions/new']")
_STATUS = _first_link("/patients/ERL-001", "a[href$='/status']")
_SAFETY_CASE = _first_link("/safety", "a[href^='/safety/cases/']")
_AUDIT_ROME = _first_link("/patients/ROM-004", "a[href$='/audit']")
_AUDIT_ERLANGEN = _first_link("/patients/ERL-001", "a[href$='/audit']")
# Each page once per width, as the role that works with it most (the patient page, the
# slowest to check, once); the refusals as the roles that meet them. Two roles read the
# pages in Italian and German (their browser asks for it): the layout must hold there too.
ROLES: dict[str, tuple[str, str, list[PageSpec]]] = {
    # role: (email, site, pages)
    "nurse": (
        NURSE,
        "Rome",
        [
            ("due-list", "/sites/{site}/due", 200),
            ("visit", _VISIT, 200),
            ("patients", "/sites/{site}/patients", 200),
            ("enrol", "/patients/new?site={site}", 200),
            ("reinfusion", _REINFUSION, 200),
            ("calendar", "/sites/{site}/calendar", 200),
            ("patient", _PATIENT, 200),
            ("patient-audit", _AUDIT_ROME, 200),
            ("adverse-events", "/sites/{site}/adverse-events", 200),
            ("case", _CASE, 200),
            ("results-to-review", "/sites/{site}/results-to-review", 200),
            ("mail", "/mail", 200),
            ("mail-detail", _MAIL, 200),
            ("forbidden", "/admin/alerts", 403),
            ("other-site-patient", "/patients/ERL-001", 404),
            ("not-found", "/no-such-page", 404),
        ],
    ),
    "investigator": (
        INVESTIGATOR,
        "Erlangen",
        [
            ("dashboard", "/dashboard", 200),
            ("due-list", "/sites/{site}/due", 200),
            ("case", _CASE, 200),
            ("status", _STATUS, 200),
        ],
    ),
    "admin": (
        ADMIN,
        "Rome",
        [
            ("dashboard", "/dashboard", 200),
            ("alerts", "/admin/alerts", 200),
            ("webhooks", "/admin/webhooks", 200),
            ("users", "/admin/users", 200),
            ("mail", "/mail", 200),
            ("mail-detail", _MAIL, 200),
        ],
    ),
    "pharmacovigilance": (
        SAFETY,
        "",
        [
            ("access", "/access", 200),
            ("password", "/account/password", 200),
            ("safety", "/safety", 200),
            ("safety-case", _SAFETY_CASE, 200),
            ("forbidden", "/dashboard", 403),
            ("not-found", "/no-such-page", 404),
        ],
    ),
    "nurse-it": (
        NURSE,
        "Rome",
        [
            ("due-list", "/sites/{site}/due", 200),
            ("visit", _VISIT, 200),
            ("patients", "/sites/{site}/patients", 200),
            ("password", "/account/password", 200),
            ("patient-audit", _AUDIT_ROME, 200),
            ("forbidden", "/admin/alerts", 403),
        ],
    ),
    "investigator-de": (
        INVESTIGATOR,
        "Erlangen",
        [
            ("dashboard", "/dashboard", 200),
            ("due-list", "/sites/{site}/due", 200),
            ("status", _STATUS, 200),
            ("enrol", "/patients/new?site={site}", 200),
            ("patients", "/sites/{site}/patients", 200),
            ("password", "/account/password", 200),
            ("patient-audit", _AUDIT_ERLANGEN, 200),
        ],
    ),
    "admin-it": (
        ADMIN,
        "Rome",
        [
            ("webhooks", "/admin/webhooks", 200),
            ("alerts", "/admin/alerts", 200),
            ("users", "/admin/users", 200),
            ("safety", "/safety", 200),
        ],
    ),
    "pharmacovigilance-de": (
        SAFETY,
        "",
        [
            ("safety", "/safety", 200),
            ("safety-case", _SAFETY_CASE, 200),
        ],
    ),
}
# The language each role's browser asks for (Accept-Language).
LOCALES = {
    "nurse-it": "it-IT",
    "investigator-de": "de-DE",
    "admin-it": "it-IT",
    "pharmacovigilance-de": "de-DE",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A demo server whose alerts were scanned and written as mail (no SMTP), so the
    outgoing-mail pages and the admins' alerts page have something to show."""
    database = tmp_path_factory.mktemp("e2e-a11y") / "demo.db"
    with demo_server(database) as live:
        engine = make_engine(f"sqlite:///{database}")
        registry = rules.ProtocolRegistry.from_directory()
        with write_session(engine) as session:
            scan(session, now=datetime.now(UTC), overrides={}, registry=registry)
        config = DispatchConfig(
            registry=registry, base_url=live.base_url, smtp=None, webhook_allow_private=True
        )
        for _ in range(50):  # each round claims a batch; a bounded number settles the demo
            if dispatch(engine, now=lambda: datetime.now(UTC), config=config).claimed == 0:
                break
        engine.dispose()
        yield live


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    contexts = []

    def make(width: int, locale: str = "en-GB") -> Page:
        context = browser.new_context(viewport={"width": width, "height": 844}, locale=locale)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Page, server: LiveServer, email: str) -> None:
    page.goto(server.base_url + "/login")
    # By the fields' names, not their labels: the page may be in Italian or German.
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(server.passwords[email])
    page.locator("main form button[type=submit]").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def blocking_violations(page: Page) -> list[str]:
    """axe's critical and serious findings, one line per rule with its first targets."""
    results: Any = _AXE.run(page).response
    lines = []
    for violation in results["violations"]:
        if violation["impact"] in BLOCKING:
            targets = [", ".join(node["target"]) for node in violation["nodes"][:3]]
            lines.append(
                f"{violation['impact']} {violation['id']} ({len(violation['nodes'])}): "
                f"{violation['help']} at {targets}"
            )
    return lines


def check_page(page: Page, width: int) -> list[str]:
    problems = blocking_violations(page)
    sideways = page.evaluate(SIDEWAYS)
    if width == PHONE and sideways > 0:
        wide = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(el => el.getBoundingClientRect().right > innerWidth + 1)
                .slice(0, 5).map(el => el.tagName + '.' + el.className)"""
        )
        problems.append(f"scrolls sideways by {sideways} px: {wide}")
    return problems


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_is_accessible_and_fits(
    new_page: Callable[..., Page],
    server: LiveServer,
    artifacts: Path,
    role: str,
    width: int,
) -> None:
    email, site, specs = ROLES[role]
    page = new_page(width, LOCALES.get(role, "en-GB"))
    base = server.base_url
    failures: dict[str, list[str]] = {}
    if role == "nurse":  # signed out: the sign-in page, and an unknown address
        for name, path in (("login", "/login"), ("not-found", "/no-such-page")):
            page.goto(base + path)
            page.screenshot(path=artifacts / f"a11y-signed-out-{name}-{width}.png", full_page=True)
            failures[f"signed out, {path}"] = check_page(page, width)
    sign_in(page, server, email)
    for name, where, status in specs:
        if isinstance(where, str):
            path = where.format(site=site)
        else:
            path = where(page, base, site)
        response = page.goto(base + path)
        assert response is not None
        page.screenshot(path=artifacts / f"a11y-{role}-{name}-{width}.png", full_page=True)
        failures[f"{name} {path}"] = check_page(page, width)
        if role in LOCALES:
            lang = page.evaluate("document.documentElement.lang")
            if lang != LOCALES[role][:2]:
                failures[f"{name} {path}"].append(f"<html lang={lang!r}>, not {LOCALES[role]}")
        kind = response.headers.get("content-type", "")
        if response.status != status or "text/html" not in kind:
            failures[f"{name} {path}"].append(f"answered {response.status} {kind}")
    report = [
        f"{role} at {width} px, {name}:\n  " + "\n  ".join(lines)
        for name, lines in failures.items()
        if lines
    ]
    assert not report, "\n".join(report)


def test_due_cards_show_their_actions_on_a_phone(
    new_page: Callable[..., Page], server: LiveServer
) -> None:
    page = new_page(PHONE)
    sign_in(page, server, NURSE)
    page.goto(server.base_url + "/sites/Rome/due")
    card = page.locator("#table-overdue tbody tr[data-key]").first
    for control in (
        card.get_by_role("button", name=re.compile("completed today")),
        card.locator("summary").filter(has_text="Other outcome"),
        card.get_by_role("link").first,  # the patient
    ):
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE, control
    label = card.locator("td.window").evaluate("cell => getComputedStyle(cell, '::before').content")
    assert label == '"Window"'  # each value on the card says what it is
    assert page.evaluate(SIDEWAYS) == 0


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("due-list", "/sites/Rome/due"),
        ("patient", "/patients/ROM-004"),
        ("patient-audit", "/patients/ROM-004/audit"),
    ],
)
def test_pages_print_on_a4(
    new_page: Callable[..., Page],
    server: LiveServer,
    artifacts: Path,
    name: str,
    path: str,
) -> None:
    page = new_page(LAPTOP)
    sign_in(page, server, NURSE)
    page.goto(server.base_url + path)
    page.emulate_media(media="print")
    for hidden in ("nav", "form", "button", ".site-footer"):
        for element in page.locator(hidden).all():
            expect(element).to_be_hidden()
    pdf = artifacts / f"print-{name}.pdf"
    page.pdf(path=pdf, format="A4", print_background=False)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert 1 <= pages <= 30, pages
    if shutil.which("pdftotext") is None:
        return  # poppler-utils is not installed: the text check needs it
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    study_ids = set(re.findall(r"\b(?:ROM|ERL)-\d{3}\b", text))
    assert study_ids, "the printed page names no patient"
    assert "Completed today" not in text
    assert "Sign out" not in text

"""Browser-test fixtures: a demo server on 127.0.0.1, Debian's Chromium, an artefacts folder.

The server runs in a background thread of the test process with the system clock (the
demo cohort is generated relative to today). Chromium is driven headless by Playwright.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, LiveServer, demo_server
from playwright.sync_api import Browser, sync_playwright


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with demo_server(tmp_path_factory.mktemp("e2e") / "demo.db") as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed (scripts/ensure-system-packages installs it)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

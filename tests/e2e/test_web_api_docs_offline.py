"""/docs works on a hospital network without internet: Swagger UI comes from assets served
by the app itself, and the browser asks nothing of any other host. (No ReDoc: its page
fetches a logo from redoc.ly whatever it is told.)"""

from __future__ import annotations

from urllib.parse import urlsplit

from live_server import LiveServer
from playwright.sync_api import Browser, Route


def test_swagger_ui_renders_with_no_other_host(live_server: LiveServer, browser: Browser) -> None:
    rendered = ".swagger-ui .opblock"  # one block per operation
    ours = urlsplit(live_server.base_url).netloc
    elsewhere: list[str] = []

    def only_ours(route: Route) -> None:
        # A closed hospital network, simulated: anything not from this server fails.
        if urlsplit(route.request.url).netloc == ours:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page = browser.new_page()
    try:
        page.route("**/*", only_ours)
        page.goto(live_server.base_url + "/docs")
        page.wait_for_selector(rendered, timeout=20_000)
        assert page.locator(rendered).count() > 5
    finally:
        page.close()
    assert elsewhere == []

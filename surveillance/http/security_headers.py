"""The security headers on every response, the API's and the documentation's too.

The pages' policy (no framing, no sniffing, same-origin referrers, scripts and styles from
this server only) is added to any response that does not set its own; an API response
(patient data) is also kept out of every cache (``Cache-Control: no-store``) unless its
route chose a caching of its own (the feeds' ETags, the calendar feed).

Swagger UI (``/docs``) starts from an inline script: that page's policy allows exactly
that script, by its hash, computed from the page as served (no ``'unsafe-inline'``).
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
NO_STORE_PREFIXES = ("/api/", "/fhir/")
# Swagger UI's pages: their inline scripts are allowed by hash; its styles are set inline.
_DOCS_PATHS = ("/docs", "/docs/oauth2-redirect")
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_policy(html: bytes) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; img-src 'self' data:; script-src 'self' {hashes}; "
        "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'"
    )


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in _DOCS_PATHS:
            await self._docs(scope, receive, send)
            return
        no_store = path.startswith(NO_STORE_PREFIXES)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                _add(headers, SECURITY_HEADERS)
                if no_store and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hold the (small) page until its end: its policy depends on its scripts."""
        start: Message | None = None
        body = b""

        async def held(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] == "http.response.body":
                body += message.get("body", b"")
                if message.get("more_body", False):
                    return
                assert start is not None
                headers = MutableHeaders(scope=start)
                _add(headers, {**SECURITY_HEADERS, "Content-Security-Policy": docs_policy(body)})
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, held)


def _add(headers: MutableHeaders, values: dict[str, str]) -> None:
    for name, value in values.items():
        if name.lower() not in headers:
            headers[name] = value

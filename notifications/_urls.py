"""Which URLs may receive webhooks: http(s) only, no private or internal addresses."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from ._errors import InvalidWebhookUrl


def validate_webhook_url(url: str, *, allow_private: bool = False, resolve: bool = True) -> str:
    """Return ``url`` if it may be used; raise ``InvalidWebhookUrl`` saying why not.

    Loopback, private, link-local and other non-global addresses are refused unless
    ``allow_private`` (so an endpoint cannot be aimed at internal services by mistake).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl(f"{url!r}: only http and https URLs are allowed")
    if not parts.hostname:
        raise InvalidWebhookUrl(f"{url!r}: no host")
    if parts.username or parts.password:
        raise InvalidWebhookUrl(
            f"{url!r}: credentials in the URL are not allowed; use the signing secret"
        )
    if allow_private:
        return url
    for address in _addresses(parts.hostname, resolve):
        if not address.is_global:
            raise InvalidWebhookUrl(
                f"{url!r}: {address} is a private, loopback or link-local address "
                "(set SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE=true to allow it)"
            )
    return url


def _addresses(host: str, resolve: bool) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return [ipaddress.ip_address("127.0.0.1")]
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise InvalidWebhookUrl(f"host {host!r} does not resolve: {exc}") from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]

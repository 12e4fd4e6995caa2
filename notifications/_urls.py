"""Which URLs may receive webhooks: http(s) only, no private or internal addresses.

An address is refused unless it is global, and an IPv6 address that carries an IPv4
address (IPv4-mapped and -compatible, NAT64, 6to4, Teredo) is refused unless the IPv4
address inside is global too: ``[64:ff9b::7f00:1]`` reaches 127.0.0.1 through a NAT64
gateway although Python calls it global.

``resolve_webhook_target`` resolves a name once and checks every address; the delivery
then connects to the checked address (``send_webhook``), so a name that resolves to a
public address when checked and to 127.0.0.1 a moment later (DNS rebinding) never
reaches 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._errors import InvalidWebhookUrl

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Why a URL is refused, before its values are put in (an application may translate them).
URL_NOT_HTTP = "{url}: only http and https URLs are allowed"
URL_NO_HOST = "{url}: no host"
URL_CREDENTIALS = "{url}: credentials in the URL are not allowed; use the signing secret"
URL_PRIVATE = (
    "{url}: {address} is a private, loopback or link-local address "
    "(set SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE=true to allow it)"
)

# NAT64: the well-known prefix (RFC 6052, the IPv4 address in the last 32 bits) and the
# local-use prefix (RFC 8215). Either may be routed by a gateway to any IPv4 address.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
# IPv4-compatible addresses (deprecated, RFC 4291 2.5.5.1): ::a.b.c.d
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


@dataclass(frozen=True)
class WebhookTarget:
    """A URL and the one address its delivery connects to."""

    url: str
    host: str
    address: Address


class UnresolvableHost(InvalidWebhookUrl):
    """The host has no address (now): may be temporary."""


def validate_webhook_url(url: str, *, allow_private: bool = False, resolve: bool = True) -> str:
    """Return ``url`` if it may be used; raise ``InvalidWebhookUrl`` saying why not.

    Loopback, private, link-local and other non-global addresses are refused unless
    ``allow_private`` (so an endpoint cannot be aimed at internal services by mistake).
    """
    host = _check_form(url)
    if allow_private:
        return url
    for address in _addresses(host, resolve):
        _check_address(url, address)
    return url


def resolve_webhook_target(url: str, *, allow_private: bool = False) -> WebhookTarget:
    """Resolve the URL's host once, check every address, return the one to connect to."""
    host = _check_form(url)
    addresses = _addresses(host, resolve=True)
    if not allow_private:
        for address in addresses:
            _check_address(url, address)
    return WebhookTarget(url=url, host=host, address=addresses[0])


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition address carries, if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address (the server's is the other one)
    if any(address in network for network in _NAT64) or (
        address in _IPV4_COMPATIBLE and int(address) > 1  # not :: or ::1
    ):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def is_forbidden(address: Address) -> bool:
    """True for any address a webhook must not reach (unless private ones are allowed)."""
    if not address.is_global:
        return True
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo is not None and not address.teredo[0].is_global:
            return True
        inner = embedded_ipv4(address)
        if inner is not None and not inner.is_global:
            return True
    return False


def _check_form(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl.saying(URL_NOT_HTTP, url=repr(url))
    if not parts.hostname:
        raise InvalidWebhookUrl.saying(URL_NO_HOST, url=repr(url))
    if parts.username or parts.password:
        raise InvalidWebhookUrl.saying(URL_CREDENTIALS, url=repr(url))
    return parts.hostname


def _check_address(url: str, address: Address) -> None:
    if is_forbidden(address):
        raise InvalidWebhookUrl.saying(URL_PRIVATE, url=repr(url), address=str(address))


def _addresses(host: str, resolve: bool) -> list[Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return [ipaddress.ip_address("127.0.0.1")]
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"host {host!r} does not resolve: {exc}") from exc
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise UnresolvableHost(f"host {host!r} has no address")
    return list(dict.fromkeys(found))

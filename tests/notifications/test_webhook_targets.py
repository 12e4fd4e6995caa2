"""Webhook targets: every non-global form refused, IPv6 transition forms included, and the
delivery connects to the address it checked (no DNS rebinding)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from support.peers import Receiver

from notifications import (
    InvalidWebhookUrl,
    PermanentDeliveryError,
    WebhookMessage,
    new_webhook_secret,
    send_webhook,
    validate_webhook_url,
)


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 well-known prefix -> 127.0.0.1
        "http://[64:ff9b::a00:1]/hook",  # NAT64 -> 10.0.0.1
        "http://[64:ff9b:1::7f00:1]/hook",  # NAT64 local-use prefix
        "http://[2002:7f00:1::]/hook",  # 6to4 -> 127.0.0.1
        "http://[2002:a9fe:a9fe::]/hook",  # 6to4 -> 169.254.169.254
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
        "http://[::ffff:7f00:1]/hook",
        "http://[::127.0.0.1]/hook",  # IPv4-compatible (deprecated)
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo, client 127.0.0.1
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://[::]/hook",
        "http://0.0.0.0/hook",
        "http://127.1/hook",
        "http://2130706433/hook",
        "http://0x7f000001/hook",
        "http://100.64.0.1/hook",  # carrier-grade NAT
    ],
)
def test_non_global_forms_are_refused(url: str) -> None:
    with pytest.raises(InvalidWebhookUrl, match="private, loopback or link-local"):
        validate_webhook_url(url)


@pytest.mark.parametrize(
    "url", ["https://[2606:4700:4700::1111]/hook", "https://[64:ff9b::5db8:d822]/hook"]
)
def test_global_ipv6_is_accepted(url: str) -> None:
    assert validate_webhook_url(url, resolve=False) == url


class Resolver:
    """``socket.getaddrinfo`` for names under ``.test``: the next answer each time."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if isinstance(host, str) and host in self.answers:
            self.asked.append(host)
            address = (
                self.answers[host].pop(0)
                if len(self.answers[host]) > 1
                else (self.answers[host][0])
            )
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]
        return _real_getaddrinfo(host, port, *args, **kwargs)


_real_getaddrinfo = socket.getaddrinfo


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    fake = Resolver({})
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


def _message(url: str) -> WebhookMessage:
    return WebhookMessage(
        url=url,
        message_id="alrt_rebind",
        event_type="assessment.overdue",
        timestamp=datetime(2026, 11, 25, 6, 0, tzinfo=UTC),
        data={},
        secrets=(new_webhook_secret(),),
    )


def test_a_name_re_pointed_at_loopback_after_its_check_is_refused_at_delivery(
    receiver: Receiver, resolver: Resolver
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    url = f"http://hooks.rebind.test:{port}/hooks"
    resolver.answers["hooks.rebind.test"] = ["93.184.216.34", "127.0.0.1"]
    assert validate_webhook_url(url) == url  # registered: the name was public then

    with httpx.Client() as client, pytest.raises(PermanentDeliveryError, match=r"127\.0\.0\.1"):
        send_webhook(client, _message(url))
    assert receiver.requests == []


def test_delivery_connects_to_the_address_it_checked(
    receiver: Receiver, resolver: Resolver
) -> None:
    """Resolved once: the second answer (which would reach nothing) is never asked for,
    and the receiver sees the original name in ``Host``."""
    port = receiver.url.split(":")[2].split("/")[0]
    url = f"http://hooks.pinned.test:{port}/hooks"
    resolver.answers["hooks.pinned.test"] = ["127.0.0.1", "192.0.2.1"]

    with httpx.Client() as client:
        result = send_webhook(client, _message(url), allow_private=True)

    assert result.status_code == 200
    assert resolver.asked == ["hooks.pinned.test"]
    [request] = receiver.requests
    assert {k.lower(): v for k, v in request.headers.items()}["host"] == f"hooks.pinned.test:{port}"
    assert request.path == "/hooks"


def test_delivery_to_a_private_address_is_refused_without_connecting(
    receiver: Receiver,
) -> None:
    with httpx.Client() as client, pytest.raises(PermanentDeliveryError, match="address refused"):
        send_webhook(client, _message(receiver.url))
    assert receiver.requests == []


def test_https_goes_to_the_checked_address_with_the_name_for_tls(resolver: Resolver) -> None:
    """The request is built for the address, the name kept for Host, SNI and the
    certificate check, and the connection is not pooled for another name."""
    resolver.answers["hooks.tls.test"] = ["93.184.216.34"]
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="ok")

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        send_webhook(client, _message("https://hooks.tls.test:8443/in?x=1"))
    [request] = seen
    assert str(request.url) == "https://93.184.216.34:8443/in?x=1"
    assert request.headers["host"] == "hooks.tls.test:8443"
    assert request.extensions["sni_hostname"] == "hooks.tls.test"
    assert request.headers["connection"] == "close"

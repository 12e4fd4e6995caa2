"""Webhooks signed per the Standard Webhooks specification.

Headers: ``webhook-id`` (the alert id, the same on every retry), ``webhook-timestamp``
(seconds), ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of id.timestamp.body>``; several
space-separated during a secret rotation). Body: ``{"type", "timestamp", "data"}``.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from ._errors import InvalidWebhookUrl, PermanentDeliveryError, TransientDeliveryError
from ._result import DeliveryResult
from ._urls import UnresolvableHost, WebhookTarget, resolve_webhook_target

TIMEOUT = httpx.Timeout(15.0)
USER_AGENT = "ltfu-surveillance-webhooks/1"


@dataclass(frozen=True)
class WebhookMessage:
    url: str
    message_id: str
    event_type: str
    timestamp: datetime  # when the event happened (UTC)
    data: dict[str, Any]
    secrets: tuple[str, ...]  # whsec_... ; two during a rotation

    def body(self) -> str:
        payload = {
            "type": self.event_type,
            "timestamp": self.timestamp.astimezone(UTC).isoformat(),
            "data": self.data,
        }
        return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str)


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign_webhook(secret: str, message_id: str, sent_at: datetime, body: str) -> str:
    return Webhook(secret).sign(msg_id=message_id, timestamp=sent_at.astimezone(UTC), data=body)


def webhook_headers(message: WebhookMessage, body: str, sent_at: datetime) -> dict[str, str]:
    signatures = " ".join(
        sign_webhook(secret, message.message_id, sent_at, body) for secret in message.secrets
    )
    return {
        "webhook-id": message.message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def send_webhook(
    client: httpx.Client,
    message: WebhookMessage,
    *,
    allow_private: bool = False,
    now: datetime | None = None,
    timeout: httpx.Timeout = TIMEOUT,
) -> DeliveryResult:
    """POST one signed webhook; no redirects followed; errors typed for the outbox.

    The host is resolved once, here; the address is checked (as when the endpoint was
    registered) and the connection goes to that address, with the original name in the
    ``Host`` header and in TLS (SNI and certificate check): a name re-pointed at an
    internal address after it was checked (DNS rebinding) is not followed there.
    """
    try:
        target = resolve_webhook_target(message.url, allow_private=allow_private)
    except UnresolvableHost as exc:
        raise TransientDeliveryError(str(exc)) from exc
    except InvalidWebhookUrl as exc:
        raise PermanentDeliveryError(f"address refused: {exc}") from exc
    body = message.body()
    sent_at = now or datetime.now(UTC)
    url, headers, extensions = _pinned(target)
    try:
        response = client.post(
            url,
            content=body.encode(),
            headers={**webhook_headers(message, body, sent_at), **headers},
            timeout=timeout,
            follow_redirects=False,
            extensions=extensions,
        )
    except httpx.TimeoutException as exc:
        raise TransientDeliveryError(f"timed out after {timeout.read}s: {exc!r}") from exc
    except httpx.TransportError as exc:
        raise TransientDeliveryError(f"could not connect: {exc!r}") from exc
    return _judge(response)


def _pinned(target: WebhookTarget) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """The URL with the checked address for host, the ``Host`` header naming the original
    host, and (https) the name to send in SNI and to check the certificate against."""
    original = httpx.URL(target.url)
    url = original.copy_with(host=str(target.address))
    headers = {"host": original.netloc.decode("ascii")}
    extensions: dict[str, Any] = {}
    if original.scheme == "https":
        extensions["sni_hostname"] = original.host
        # The pool knows connections by address: one made (and its certificate checked)
        # for another name on the same address must not carry this request. Not kept.
        headers["connection"] = "close"
    return url, headers, extensions


def _judge(response: httpx.Response) -> DeliveryResult:
    code = response.status_code
    text = response.text[:2048]
    if 200 <= code < 300:
        return DeliveryResult(code, text)
    if code == 429:
        raise TransientDeliveryError(
            f"429 Too Many Requests: {text}", status_code=code, retry_after=_retry_after(response)
        )
    if code >= 500:
        raise TransientDeliveryError(f"{code} from receiver: {text}", status_code=code)
    if code == 410:
        raise PermanentDeliveryError(
            "410 Gone: the receiver asked to stop", status_code=code, gone=True
        )
    if 300 <= code < 400:
        raise PermanentDeliveryError(
            f"{code} redirect to {response.headers.get('location')!r} (not followed)",
            status_code=code,
        )
    raise PermanentDeliveryError(f"{code} from receiver: {text}", status_code=code)


def _retry_after(response: httpx.Response) -> timedelta | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment - datetime.now(UTC), timedelta(0))

"""Delivery of alerts: email over SMTP and signed webhooks (Standard Webhooks).

Pure delivery: a message and a channel in, a ``DeliveryResult`` or a typed
``DeliveryError`` out. No database, no scheduling, no retries here (the caller's outbox
decides when to try again, with ``next_retry_delay``). Never imports ``surveillance``
or ``rules``.
"""

from ._email import EmailMessage, SmtpConfig, send_email
from ._errors import (
    DeliveryError,
    InvalidWebhookUrl,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from ._result import DeliveryResult
from ._retry import RETRY_SCHEDULE, next_retry_delay
from ._urls import WebhookTarget, is_forbidden, resolve_webhook_target, validate_webhook_url
from ._webhook import (
    WebhookMessage,
    new_webhook_secret,
    send_webhook,
    sign_webhook,
    webhook_headers,
)

__all__ = [
    "RETRY_SCHEDULE",
    "DeliveryError",
    "DeliveryResult",
    "EmailMessage",
    "InvalidWebhookUrl",
    "PermanentDeliveryError",
    "SmtpConfig",
    "TransientDeliveryError",
    "WebhookMessage",
    "WebhookTarget",
    "is_forbidden",
    "new_webhook_secret",
    "next_retry_delay",
    "resolve_webhook_target",
    "send_email",
    "send_webhook",
    "sign_webhook",
    "validate_webhook_url",
    "webhook_headers",
]

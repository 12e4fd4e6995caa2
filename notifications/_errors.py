"""Delivery errors.

Hierarchy::

    DeliveryError                  (detail: str, status_code: int | None)
     ├── TransientDeliveryError    try again later: timeouts, refused connections, 5xx,
     │                             429 (retry_after from Retry-After), SMTP 4xx
     └── PermanentDeliveryError    trying again will not help: 4xx, SMTP 5xx, rejected
                                   recipient; ``gone`` for 410 (disable the endpoint)
    InvalidWebhookUrl              a URL refused at registration (scheme, private address)
"""

from __future__ import annotations

from datetime import timedelta

MAX_DETAIL = 2048  # keep attempt rows small: error bodies can be large


class DeliveryError(Exception):
    def __init__(self, detail: str, *, status_code: int | None = None) -> None:
        self.detail = detail[:MAX_DETAIL]
        self.status_code = status_code
        super().__init__(self.detail)


class TransientDeliveryError(DeliveryError):
    def __init__(
        self, detail: str, *, status_code: int | None = None, retry_after: timedelta | None = None
    ) -> None:
        super().__init__(detail, status_code=status_code)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    def __init__(self, detail: str, *, status_code: int | None = None, gone: bool = False) -> None:
        super().__init__(detail, status_code=status_code)
        self.gone = gone


class InvalidWebhookUrl(ValueError):
    """The URL cannot be used as a webhook endpoint; the message says why.

    ``template`` is the message before ``values`` were put in (``"{url}: no host"``), when
    there is one: an application may say it in its reader's language."""

    def __init__(
        self, message: str, *, template: str | None = None, values: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.template = template
        self.values = values or {}

    @classmethod
    def saying(cls, template: str, **values: str) -> InvalidWebhookUrl:
        return cls(template.format(**values), template=template, values=values)

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryResult:
    """A successful delivery: what the receiver answered."""

    status_code: int | None
    detail: str

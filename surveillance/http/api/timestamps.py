"""A moment in the API is an RFC 3339 ``date-time``, with its offset.

SQLite gives back stored moments without a zone (they are UTC); sent like that they are
not the ``date-time`` the OpenAPI document promises. Every schema's moment is this type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_aware)]

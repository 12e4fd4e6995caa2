"""Optimistic concurrency: an update names the version it was made against."""

from __future__ import annotations

from surveillance.errors import PreconditionFailed


def check_version(expected: int | None, current: int, what: str) -> None:
    """Raise ``PreconditionFailed`` when ``expected`` (from If-Match) is not ``current``.

    Call it after the row is locked (``FOR UPDATE`` on PostgreSQL; SQLite writers are
    serialised by ``BEGIN IMMEDIATE``), so two racing updates cannot both pass.
    """
    if expected is not None and expected != current:
        raise PreconditionFailed(
            f"{what} changed since you read it (version {current}, you sent {expected}); "
            "reload and retry"
        )

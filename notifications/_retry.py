"""When to try a failed delivery again."""

from __future__ import annotations

from datetime import timedelta

# Attempt n failed -> wait RETRY_SCHEDULE[n-1]; after the last one the alert has failed.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_RETRY_AFTER = timedelta(hours=10)


def next_retry_delay(attempts: int, retry_after: timedelta | None = None) -> timedelta | None:
    """The wait after ``attempts`` failed attempts, or ``None`` when retries are exhausted.

    A receiver's ``Retry-After`` is honoured when longer than the schedule (capped).

    >>> next_retry_delay(1)
    datetime.timedelta(seconds=5)
    >>> next_retry_delay(8) is None
    True
    """
    if attempts < 1 or attempts > len(RETRY_SCHEDULE):
        return None
    delay = RETRY_SCHEDULE[attempts - 1]
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay

"""The access log without secrets: a calendar feed token travels in the query string
(calendar apps cannot send headers), and uvicorn's access log writes the query string."""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
_SECRET = re.compile(r"(?i)((?:^|[?&;])(?:token|access_token)=)[^&;\s\"]*")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with the value of every ``token=`` query parameter replaced."""
    return _SECRET.sub(rf"\g<1>{REDACTED}", text)


class RedactTokens(logging.Filter):
    """Rewrites a record's message arguments (uvicorn logs the path as one of them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install(logger_name: str = ACCESS_LOGGER) -> None:
    """Add the filter to the access logger, once (logging.config keeps a logger's filters)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(existing, RedactTokens) for existing in logger.filters):
        logger.addFilter(RedactTokens())

"""Where a long-running process's log lines go."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_stderr() -> None:
    """The application's log lines (scans, dispatch, refused requests) on stderr at INFO:
    without a handler Python shows only warnings, and an operator never sees a scan.
    Process-wide: called only where a process starts (``cli.main``, ``app_from_environment``)."""
    logger = logging.getLogger("surveillance")
    # None if logging is configured already (a handler here or on the root: the lines
    # would be written twice); that configuration decides.
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)

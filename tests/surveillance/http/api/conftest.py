"""Fixtures of the API tests; the helpers they use live in ``api_support.py`` and
``live_api.py`` (imported by name from there, so no test depends on which folder's
conftest Python found first)."""

from __future__ import annotations

from support.api_support import api, shared_api
from support.live_api import live_api, live_api_settings

__all__ = ["api", "live_api", "live_api_settings", "shared_api"]

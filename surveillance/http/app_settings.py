"""The settings an app was built with, for routes that need more than ``AppState`` holds
(the alert policy, whether webhooks may point at private addresses, the SMTP host)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import State

from surveillance.alerting.policy import parse_overrides
from surveillance.config import Settings, get_settings


def settings_of(app_state: State) -> Settings:
    """``create_app`` keeps its settings on ``app.state``; the environment's otherwise."""
    settings = getattr(app_state, "settings", None)
    return settings if isinstance(settings, Settings) else get_settings()


def policy_overrides(settings: Settings) -> dict[str, dict[str, Any]]:
    """``SURVEILLANCE_ALERT_POLICY``, parsed (checked at start-up by the scheduler)."""
    return parse_overrides(settings.alert_policy)


async def get_app_settings(request: Request) -> Settings:
    return settings_of(request.app.state)


AppSettings = Annotated[Settings, Depends(get_app_settings)]

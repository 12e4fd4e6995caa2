"""The settings an app was built with, for routes that need more than ``AppState`` holds
(the alert policy, whether webhooks may point at private addresses, the SMTP host)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import State

from surveillance.alerting.policy import parse_overrides
from surveillance.config import Settings


def settings_of(app_state: State) -> Settings:
    """The runtime's settings, which ``create_app`` keeps on ``app.state``."""
    settings = app_state.settings
    assert isinstance(settings, Settings)
    return settings


def policy_overrides(settings: Settings) -> dict[str, dict[str, Any]]:
    """``SURVEILLANCE_ALERT_POLICY``, parsed (checked at start-up by the scheduler)."""
    return parse_overrides(settings.alert_policy)


async def get_app_settings(request: Request) -> Settings:
    return settings_of(request.app.state)


AppSettings = Annotated[Settings, Depends(get_app_settings)]

"""The morning digest: one email a day to each site's nurses, once its local hour has come,
listing what opens today and what is due this week."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

import rules
from surveillance.alerting.policy import policy_for
from surveillance.patients.due_list import DueState, due_list
from surveillance.records.outbox import Alert, AlertKind, Channel
from surveillance.records.sites import list_sites


def create_digests(
    session: Session,
    *,
    now: datetime,
    overrides: dict[str, dict[str, Any]],
    site_id: str | None = None,
) -> int:
    """Today's digest email for each site whose local digest hour has come (once a day)."""
    created = 0
    kind = AlertKind.digest.value
    sites = list_sites(session)
    for site in sites:
        if site_id is not None and site.id != site_id:
            continue
        local = now.astimezone(ZoneInfo(site.timezone))
        policy = policy_for(overrides, site=site.id, protocol="")
        if local.hour < policy.digest_hour:
            continue
        day = local.date()
        alert_id = f"{kind}:{site.id}:{day.isoformat()}:email:site:{site.id}:nurse"
        if session.get(Alert, alert_id) is not None:
            continue
        session.add(
            Alert(
                id=alert_id,
                kind=kind,
                level=0,
                channel=Channel.email.value,
                recipient=f"site:{site.id}:nurse",
                site_id=site.id,
                as_of=day,
                next_attempt_at=now,
                created_at=now,
            )
        )
        created += 1
    session.flush()
    return created


def digest_data(
    session: Session, alert: Alert, *, registry: rules.ProtocolRegistry, base_url: str
) -> dict[str, Any]:
    """The site's due list on the digest's day: opening today, and due within a week."""
    assert alert.site_id is not None
    day = alert.as_of
    items = due_list(
        session, site_id=alert.site_id, on=day, registry=registry, states=(DueState.due,), limit=500
    )
    week_end = day + timedelta(days=7)

    def brief(i: Any) -> dict[str, str]:
        return {
            "study_id": i.study_id,
            "name": i.name,
            "key": i.key,
            "due": i.due_on.isoformat(),
            "window_start": i.window_start.isoformat(),
            "window_end": i.window_end.isoformat(),
        }

    return {
        "site": alert.site_id,
        "date": day.isoformat(),
        "opening": [brief(i) for i in items if i.window_start == day],
        "this_week": [brief(i) for i in items if i.due_on <= week_end],
        "due_list_url": f"{base_url}/sites/{alert.site_id}/due",
    }

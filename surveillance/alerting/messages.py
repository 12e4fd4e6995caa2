"""What an alert says: its event data (frozen at the first attempt) and its email, both as
its kind declares them (``kinds``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlmodel import Session

import rules
from surveillance.alerting.kinds import kind_of
from surveillance.records.outbox import Alert

TEMPLATES = Path(__file__).parent / "templates"
_templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def event_data(
    session: Session, alert: Alert, *, registry: rules.ProtocolRegistry, base_url: str
) -> dict[str, Any]:
    """The pseudonymous data of an alert (the webhook ``data`` and the email's facts)."""
    return kind_of(alert.kind).data(session, alert, registry=registry, base_url=base_url)


def render_email(alert: Alert, data: dict[str, Any]) -> tuple[str, str, str | None]:
    """(subject, plain text, html or None)."""
    kind = kind_of(alert.kind)
    if kind.email is None:
        raise LookupError(f"alert kind {alert.kind} is not sent by email")
    context = {"kind": alert.kind, "data": data, "alert_id": alert.id}
    text = _render(f"{kind.name.value}.txt", context)
    html = _render(f"{kind.name.value}.html", context) if kind.email.html else None
    return kind.email.subject(alert, data), text, html


def _render(name: str, context: dict[str, Any]) -> str:
    return _templates.get_template(name).render(**context)

"""What an alert says: its event data (frozen at the first attempt) and its email, both as
its kind declares them (``kinds``).

The data is frozen in English with ISO dates (webhooks and the API read it); the email is
written in its reader's language when it is rendered: labels from the catalogs, dates per
locale, assessment names from the protocol files' translations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlmodel import Session

import rules
from surveillance.alerting.kinds import kind_of
from surveillance.kit import i18n
from surveillance.records.outbox import Alert

TEMPLATES = Path(__file__).parent / "templates"
_templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
i18n.install(_templates)
# A case's change, shown in the email (``data.change``); marked here for the catalogs.
CHANGES = (i18n.N_("created"), i18n.N_("updated"), i18n.N_("nullified"))


def event_data(
    session: Session, alert: Alert, *, registry: rules.ProtocolRegistry, base_url: str
) -> dict[str, Any]:
    """The pseudonymous data of an alert (the webhook ``data`` and the email's facts)."""
    return kind_of(alert.kind).data(session, alert, registry=registry, base_url=base_url)


def render_email(
    alert: Alert,
    data: dict[str, Any],
    *,
    locale: str = i18n.DEFAULT_LOCALE,
    terms: i18n.Terms | None = None,
) -> tuple[str, str, str | None]:
    """(subject, plain text, html or None) in ``locale``; ``terms`` translates assessment
    names (``ProtocolRegistry.name_translations``)."""
    kind = kind_of(alert.kind)
    if kind.email is None:
        raise LookupError(f"alert kind {alert.kind} is not sent by email")
    context = {"kind": alert.kind, "data": data, "alert_id": alert.id}
    with i18n.use_locale(locale, terms):
        text = _render(f"{kind.name.value}.txt", context)
        html = _render(f"{kind.name.value}.html", context) if kind.email.html else None
        return kind.email.subject(alert, data), text, html


def _render(name: str, context: dict[str, Any]) -> str:
    return _templates.get_template(name).render(**context)

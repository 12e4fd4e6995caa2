"""What is alerted, when, to whom. Defaults below; override per site or protocol with
``SURVEILLANCE_ALERT_POLICY`` (JSON), e.g. ``{"site:Rome": {"escalate_after_days": 10}}``."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Any

import rules


@dataclass(frozen=True)
class AlertPolicy:
    escalate_after_days: int = 14  # after the window closed: the site's investigators
    sponsor_after_days: int = 60  # after the window closed: the admins / sponsor contact
    remind_every_days: int = 7  # unacknowledged escalations are repeated this often
    digest_hour: int = 7  # local time at the site
    # A reporting clock (24 hours, 7 or 15 days) reaches the investigators a day after it
    # ran out, not after the 14 days of an ordinary assessment.
    reporting_escalate_after_days: int = 1
    # Hours a safety system has to acknowledge a serious case's latest version.
    acknowledge_within_hours: int = 24
    # Rules whose occurrences are the yearly contact; two missed in a row = at risk. None:
    # the rules the protocol marks `yearly_contact: true` (an override may name others).
    yearly_contacts: tuple[str, ...] | None = None

    def yearly_contact_rules(
        self, registry: rules.ProtocolRegistry, protocol_id: str
    ) -> tuple[str, ...]:
        """The protocol's yearly contacts, as marked in any of its loaded versions (its
        patients may follow different versions), unless this policy names them."""
        if self.yearly_contacts is not None:
            return self.yearly_contacts
        versions = [protocol for protocol in registry.all() if protocol.id == protocol_id]
        return tuple(dict.fromkeys(rule for p in versions for rule in p.yearly_contacts))


DEFAULT_POLICY = AlertPolicy()


def parse_overrides(text: str | None) -> dict[str, dict[str, Any]]:
    """``{"site:Rome": {...}, "protocol:aav-liver-5-year": {...}}``; raise ``ValueError``."""
    if not text:
        return {}
    data = json.loads(text)
    known = {f.name for f in fields(AlertPolicy)}
    if not isinstance(data, dict):
        raise ValueError("SURVEILLANCE_ALERT_POLICY must be a JSON object")
    for scope, values in data.items():
        if not (scope.startswith("site:") or scope.startswith("protocol:")) or not isinstance(
            values, dict
        ):
            raise ValueError(
                f"alert policy scope {scope!r}: use 'site:ID' or 'protocol:ID' with an object"
            )
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"alert policy {scope!r}: unknown settings {sorted(unknown)}")
    return data


def policy_for(overrides: dict[str, dict[str, Any]], *, site: str, protocol: str) -> AlertPolicy:
    """Protocol settings first, then site settings on top (the site knows its staff)."""
    policy = DEFAULT_POLICY
    for scope in (f"protocol:{protocol}", f"site:{site}"):
        values = dict(overrides.get(scope, {}))
        if "yearly_contacts" in values:
            values["yearly_contacts"] = tuple(values["yearly_contacts"])
        policy = replace(policy, **values)
    return policy

"""The alert policy: defaults, overrides per protocol and site, and what it reads from the
protocols (which assessments are the yearly contact)."""

from __future__ import annotations

import pytest

import rules
from surveillance.alerting.policy import DEFAULT_POLICY, parse_overrides, policy_for

CAR_T = "cd19-car-t-pediatric-autoimmune"
AAV = "aav-liver-5-year"


def test_the_yearly_contacts_are_those_the_protocol_marks(
    registry: rules.ProtocolRegistry,
) -> None:
    assert DEFAULT_POLICY.yearly_contacts is None
    assert DEFAULT_POLICY.yearly_contact_rules(registry, CAR_T) == (
        "ltfu_exam",
        "ltfu_exam_pediatric",
        "ltfu_contact",
    )
    assert DEFAULT_POLICY.yearly_contact_rules(registry, AAV) == ("aav_ltfu_exam",)
    assert DEFAULT_POLICY.yearly_contact_rules(registry, "not-loaded") == ()


def test_an_override_names_the_yearly_contacts_instead(registry: rules.ProtocolRegistry) -> None:
    overrides = parse_overrides(
        '{"protocol:aav-liver-5-year": {"yearly_contacts": ["aav_alt"], "escalate_after_days": 5},'
        ' "site:Rome": {"escalate_after_days": 10}}'
    )
    aav_in_rome = policy_for(overrides, site="Rome", protocol=AAV)
    assert aav_in_rome.yearly_contact_rules(registry, AAV) == ("aav_alt",)
    assert aav_in_rome.escalate_after_days == 10  # the site's setting on top
    car_t = policy_for(overrides, site="Rome", protocol=CAR_T)
    assert car_t.yearly_contact_rules(registry, CAR_T) == (
        "ltfu_exam",
        "ltfu_exam_pediatric",
        "ltfu_contact",
    )


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown settings"):
        parse_overrides('{"site:Rome": {"yearly_contact": ["ltfu_exam"]}}')

"""Assessment names in Italian and German (``name_it``, ``name_de``): optional, checked
like every other field, and in the shipped protocol 1.1 for every assessment."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rules import ProtocolError, ProtocolRegistry, parse_protocol

ProtocolText = Callable[..., str]


def test_names_default_to_english(protocol_text: ProtocolText) -> None:
    protocol = parse_protocol(protocol_text())
    assert protocol.rules["visit"].spec.names() == {"en": "Visit"}


def test_translated_names(protocol_text: ProtocolText) -> None:
    text = protocol_text(
        replace={"    name: Visit": "    name: Visit\n    name_it: Visita\n    name_de: Besuch"}
    )
    spec = parse_protocol(text).rules["visit"].spec
    assert spec.names() == {"en": "Visit", "it": "Visita", "de": "Besuch"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("    name_fr: Visite", "unknown key 'name_fr'"),
        ('    name_it: ""', "String should have at least 1 character"),
    ],
)
def test_a_bad_translation_is_refused(protocol_text: ProtocolText, line: str, reason: str) -> None:
    text = protocol_text(replace={"    name: Visit": f"    name: Visit\n{line}"})
    with pytest.raises(ProtocolError, match="assessment 'visit'") as error:
        parse_protocol(text)
    assert reason in str(error.value)


def test_protocol_1_1_names_every_assessment_in_italian_and_german() -> None:
    protocol = ProtocolRegistry.from_directory().get("cd19-car-t-pediatric-autoimmune", "1.1")
    for rule in protocol.rules.values():
        assert set(rule.spec.names()) == {"en", "it", "de"}, rule.spec.id


def test_the_registry_translates_by_the_english_name() -> None:
    names = ProtocolRegistry.from_directory().name_translations()
    assert names["Serum IgG, IgA, IgM"] == {
        "en": "Serum IgG, IgA, IgM",
        "it": "IgG, IgA, IgM sieriche",
        "de": "Serum-IgG, -IgA, -IgM",
    }

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


def test_category_names_in_italian_and_german(protocol_text: ProtocolText) -> None:
    text = protocol_text() + "categories:\n  core:\n    name_it: nucleo\n    name_de: Kern\n"
    protocol = parse_protocol(text)
    assert protocol.spec.categories["core"].names() == {"it": "nucleo", "de": "Kern"}


def test_a_name_for_a_category_no_assessment_has_is_refused(protocol_text: ProtocolText) -> None:
    """A typo in a category's id would otherwise leave its assessments untranslated."""
    text = protocol_text() + "categories:\n  cor:\n    name_it: nucleo\n"
    with pytest.raises(ProtocolError) as error:
        parse_protocol(text)
    assert "categories names cor, which no assessment of this file has" in str(error.value)
    assert "(its categories: core)" in str(error.value)


def test_every_shipped_category_has_italian_and_german_words() -> None:
    registry = ProtocolRegistry.from_directory()
    names = registry.name_translations()
    for protocol in registry.all():
        for category in {rule.spec.category for rule in protocol.rules.values()}:
            assert set(names.get(category, {})) >= {"it", "de"}, (protocol.id, category)
    assert names["vector-safety"] == {"it": "sicurezza del vettore", "de": "Vektorsicherheit"}

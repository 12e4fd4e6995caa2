"""The protocol files shipped in ``rules/protocols``: they load, and every row cites its source.

The evidence checks read the raw YAML, so they hold even if the validator changes.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

import rules
from rules import BUNDLED_PROTOCOLS, ProtocolRegistry, load_protocol
from rules import _offsets as offsets_module

FILES = sorted(BUNDLED_PROTOCOLS.glob("*.yaml"))
BASES = {"regulatory", "guideline", "local-default"}


def raw(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_bundled_protocols_are_there() -> None:
    assert [path.name for path in FILES] == [
        "aav-liver-5-year.yaml",
        "cd19-car-t-pediatric-autoimmune-1.1.yaml",
        "cd19-car-t-pediatric-autoimmune.yaml",
    ]
    assert ProtocolRegistry.from_directory().ids() == [
        "aav-liver-5-year",
        "cd19-car-t-pediatric-autoimmune",
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_loads_and_is_named_after_its_id(path: Path) -> None:
    protocol = load_protocol(path)
    # A later version of a protocol is named after its id and version.
    assert path.stem in (protocol.id, f"{protocol.id}-{protocol.version}")
    assert protocol.source == str(path)
    assert list(protocol.rules) == [a["id"] for a in raw(path)["assessments"]]
    assert sorted(protocol.order) == sorted(protocol.rules)
    for rule in protocol.rules.values():
        assert rule.points, rule.id
        assert [p.number for p in rule.points] == list(range(1, len(rule.points) + 1))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_assessment_cites_a_listed_reference(path: Path) -> None:
    data = raw(path)
    references = data["references"]
    for assessment in data["assessments"]:
        sources = assessment["evidence"]["sources"]
        assert len(sources) >= 1, assessment["id"]
        unknown = [s for s in sources if s not in references]
        assert unknown == [], f"{assessment['id']} cites {unknown}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_evidence_basis_is_known(path: Path) -> None:
    for assessment in raw(path)["assessments"]:
        assert assessment["evidence"]["basis"] in BASES, assessment["id"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_evidence_note_is_tagged(path: Path) -> None:
    # [S] from the source, [S~] from a summary still to check, [D] our default.
    for assessment in raw(path)["assessments"]:
        note = assessment["evidence"].get("note", "")
        assert re.search(r"\[(S|S~|D)\]", note), assessment["id"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_reference_has_a_title_and_a_link(path: Path) -> None:
    for key, reference in raw(path)["references"].items():
        assert reference["title"].strip(), key
        assert reference["url"].startswith(("http://", "https://")), key


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_death_and_withdrawal_end_follow_up(path: Path) -> None:
    events = raw(path)["events"]
    assert events["death"]["end_follow_up"] is True
    assert events["withdrawal"]["end_follow_up"] is True


def test_follow_up_durations() -> None:
    registry = ProtocolRegistry.from_directory()
    car_t = registry.get("cd19-car-t-pediatric-autoimmune").spec.follow_up
    aav = registry.get("aav-liver-5-year").spec.follow_up
    assert (str(car_t.duration), car_t.anchor, str(car_t.baseline_from)) == (
        "Y15",
        "last_infusion",
        "D-30",
    )
    assert (str(aav.duration), aav.anchor, str(aav.baseline_from)) == (
        "Y5",
        "first_infusion",
        "D-30",
    )


@pytest.mark.parametrize("module", [rules, offsets_module], ids=lambda m: m.__name__)
def test_documentation_examples_run(module: ModuleType) -> None:
    failures, attempted = doctest.testmod(module, raise_on_error=False, verbose=False)
    assert attempted > 0
    assert failures == 0

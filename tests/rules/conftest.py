"""Shared helpers for the rules tests: the bundled protocols and small protocol files.

The helpers are fixtures (not imports from this module) so the tests keep working
whatever other ``conftest.py`` files the test tree grows.

``protocol_text`` builds a minimal valid protocol so an error test changes one thing at
a time: ``protocol_text(replace={"window: [-7, 7]": "window: [5, 30]"})``. Replacements
must match exactly once, so a typo in a test cannot silently leave the file valid.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from rules import Protocol, ProtocolRegistry

CAR_T = "cd19-car-t-pediatric-autoimmune"
AAV = "aav-liver-5-year"

# Line numbers matter to the YAML syntax tests: keep this text stable.
MINIMAL_PROTOCOL = """\
id: test-protocol
version: "1.0"
title: Test protocol
product: Test product
follow_up:
  duration: Y2
  baseline_from: D-30
diagnoses:
  dx_a: Diagnosis A
  dx_b: Diagnosis B
references:
  REF-1:
    title: Reference one
  REF-2:
    title: Reference two
events:
  death:
    description: Death
    end_follow_up: true
  withdrawal:
    description: Withdrawal of consent
    end_follow_up: true
assessments:
  - id: visit
    name: Visit
    category: core
    schedule:
      - at: [M1, M6]
    window: [-7, 7]
    evidence:
      basis: guideline
      sources: [REF-1]
"""

ProtocolText = Callable[..., str]
WriteProtocol = Callable[..., Path]


def build_protocol_text(*assessments: str, replace: Mapping[str, str] | None = None) -> str:
    """The minimal protocol, plus ``assessments`` (YAML items starting with ``- id:``),
    with each ``replace`` key (which must occur exactly once) replaced by its value."""
    text = MINIMAL_PROTOCOL
    for block in assessments:
        text += textwrap.indent(textwrap.dedent(block).strip("\n"), "  ") + "\n"
    # Required of every protocol; last, so that the line numbers above stay as they are.
    text += "reporting_category: null\n"
    for old, new in (replace or {}).items():
        count = text.count(old)
        assert count == 1, f"test setup: {old!r} occurs {count} times in the protocol text"
        text = text.replace(old, new)
    return text


@pytest.fixture
def protocol_text() -> ProtocolText:
    """``protocol_text(*extra_assessments, replace={old: new})`` -> YAML text."""
    return build_protocol_text


@pytest.fixture
def write_protocol(tmp_path: Path) -> WriteProtocol:
    """``write_protocol(text, name="protocol.yaml")`` -> the path of the written file."""

    def write(text: str, name: str = "protocol.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def registry() -> ProtocolRegistry:
    return ProtocolRegistry.from_directory()


@pytest.fixture(scope="session")
def car_t(registry: ProtocolRegistry) -> Protocol:
    return registry.get(CAR_T, "1.0")  # the tests written for 1.0 (1.1: golden tests)


@pytest.fixture(scope="session")
def aav(registry: ProtocolRegistry) -> Protocol:
    return registry.get(AAV)

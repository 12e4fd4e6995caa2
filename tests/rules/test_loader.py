"""Loading valid protocol files, and finding them again by id and version."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from support.protocols import declared_result

from rules import (
    PatientFacts,
    ProtocolError,
    ProtocolRegistry,
    RecordedResult,
    UnknownProtocol,
    build_calendar,
    load_protocol,
)

ProtocolText = Callable[..., str]
WriteProtocol = Callable[..., Path]


def test_version_written_as_a_number_keeps_its_text(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    for written, read in [("1.0", "1.0"), ("1.10", "1.10"), ("2", "2"), ('"1.2.3"', "1.2.3")]:
        text = protocol_text(replace={'version: "1.0"': f"version: {written}"})
        assert load_protocol(write_protocol(text)).version == read, written


def test_numbers_with_a_fraction_still_work_in_conditions(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    recheck = """
    - id: recheck
      name: Recheck
      category: core
      anchor: trigger
      starts: when_started
      schedule:
        - at: [D7]
      window: [-7, 0]
      evidence: {basis: guideline, sources: [REF-1]}
    """
    text = protocol_text(
        recheck,
        replace={
            "    window: [-7, 7]\n": "    window: [-7, 7]\n"
            + declared_result("- when: {at_least: 1.5}")
            + "    on_result:\n"
            "      - when: {at_least: 1.5}\n        start: [recheck]\n"
        },
    )
    protocol = load_protocol(write_protocol(text))
    patient = PatientFacts(date(1980, 1, 1), "dx_a")
    for value, started in [("1.5", True), ("1.49", False), ("2", True)]:
        result = RecordedResult(1, "visit", 1, date(2024, 3, 1), value)
        calendar = build_calendar(protocol, patient, [date(2024, 1, 31)], results=[result])
        assert ("recheck" in {a.assessment for a in calendar}) is started, value


def test_yaml_anchors_and_merge_keys_are_allowed(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    second = """
    - id: second_visit
      name: Second visit
      category: core
      schedule:
        - at: [M3]
      window: [-7, 7]
      evidence:
        <<: *shared_evidence
        sources: [REF-2]
    """
    text = protocol_text(
        second,
        replace={"    evidence:\n      basis": "    evidence: &shared_evidence\n      basis"},
    )
    protocol = load_protocol(write_protocol(text))
    spec = protocol.rules["second_visit"].spec
    assert spec.evidence.basis == "guideline"
    assert spec.evidence.sources == ("REF-2",)  # the explicit key overrides the merged one


def test_registry_finds_the_newest_version_by_number(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, tmp_path: Path
) -> None:
    for version in ("1.2", "1.10", "1.9"):
        write_protocol(
            protocol_text(replace={'version: "1.0"': f'version: "{version}"'}),
            name=f"test-{version}.yaml",
        )
    (tmp_path / "README.md").write_text("not a protocol")
    registry = ProtocolRegistry.from_directory(tmp_path)
    assert registry.ids() == ["test-protocol"]
    assert registry.get("test-protocol").version == "1.10"  # 10 > 9, not "1.9" > "1.10"
    assert registry.get("test-protocol", "1.2").version == "1.2"
    assert [p.version for p in registry.all()] == ["1.2", "1.9", "1.10"]


def test_unknown_protocol(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, tmp_path: Path
) -> None:
    write_protocol(protocol_text())
    registry = ProtocolRegistry.from_directory(tmp_path)
    with pytest.raises(UnknownProtocol) as caught:
        registry.get("car-t")
    assert str(caught.value) == "unknown protocol 'car-t'; known: test-protocol"
    with pytest.raises(UnknownProtocol) as caught:
        registry.get("test-protocol", "9")
    assert str(caught.value) == "unknown protocol 'test-protocol version 9'; known: test-protocol"
    assert isinstance(caught.value, LookupError)


def test_empty_registry(tmp_path: Path) -> None:
    registry = ProtocolRegistry.from_directory(tmp_path)
    assert registry.ids() == []
    with pytest.raises(UnknownProtocol, match="known: none"):
        registry.get("anything")


def test_the_same_version_in_two_files_is_refused(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, tmp_path: Path
) -> None:
    first = write_protocol(protocol_text(), name="a.yaml")
    second = write_protocol(protocol_text(), name="b.yaml")
    with pytest.raises(ProtocolError) as caught:
        ProtocolRegistry.from_directory(tmp_path)
    assert str(caught.value) == (
        f"{second}, field 'version': protocol test-protocol version 1.0 is also defined in {first}"
    )


def test_a_broken_file_stops_the_registry_with_its_name(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, tmp_path: Path
) -> None:
    write_protocol(protocol_text(), name="good.yaml")
    broken = write_protocol(
        protocol_text(replace={"window: [-7, 7]": "window: [5, 30]"}), name="other.yaml"
    )
    prefix = f"^{re.escape(str(broken))}, assessment 'visit', field 'window': "
    with pytest.raises(ProtocolError, match=prefix):
        ProtocolRegistry.from_directory(tmp_path)

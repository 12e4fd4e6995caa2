"""The evidence check: a row's basis may claim no more than its note's tags and its
sources' kinds support (rules/_evidence.py states the rule)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

import rules
from rules import Basis, ReferenceKind, check_evidence, note_tags

ProtocolText = Callable[..., str]
WriteProtocol = Callable[..., Path]
VISIT_EVIDENCE = "      basis: guideline\n      sources: [REF-1]\n"


def _protocol(
    protocol_text: ProtocolText,
    write_protocol: WriteProtocol,
    *,
    basis: str,
    note: str | None,
    kinds: tuple[str | None, str | None] = (None, None),
    sources: str = "[REF-1]",
) -> rules.Protocol:
    """The minimal protocol with the visit's evidence, and REF-1/REF-2 of those kinds."""
    evidence = f"      basis: {basis}\n      sources: {sources}\n"
    if note is not None:
        evidence += f"      note: {note!r}\n".replace("'", '"')
    replace = {VISIT_EVIDENCE: evidence}
    for number, kind in enumerate(kinds, start=1):
        if kind is not None:
            title = f"    title: Reference {'one' if number == 1 else 'two'}\n"
            replace[title] = f"{title}    kind: {kind}\n"
    path = write_protocol(protocol_text(replace=replace))
    return rules.load_protocol(path)


def _reasons(report: rules.EvidenceReport, level: str) -> list[str]:
    return [f"{f.field}: {f.reason}" for f in report.findings if f.level == level]


def test_tags_are_read_from_the_note() -> None:
    assert note_tags("[S] quoted; [S~] summary; cadence [D]") == {"S", "S~", "D"}
    assert note_tags("[S~]/[D] test archived samples") == {"S~", "D"}
    assert note_tags("no tag here [X] [s]") == frozenset()
    assert note_tags(None) == frozenset()


def test_a_local_default_always_passes(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    protocol = _protocol(protocol_text, write_protocol, basis="local-default", note=None)
    report = check_evidence(protocol)
    assert report.findings == ()
    assert [row.assessment for row in report.by_basis(Basis.local_default)] == ["visit"]


def test_regulatory_on_a_regulation_with_a_verified_claim_passes(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    protocol = _protocol(
        protocol_text,
        write_protocol,
        basis="regulatory",
        note="[S] quoted from section IV; window [D]",
        kinds=("regulation", None),
    )
    report = check_evidence(protocol, strict=True)
    assert report.findings == ()
    assert report.rows[0].sources[0].kind is ReferenceKind.regulation


def test_regulatory_with_only_unverified_claims_fails_whatever_the_sources(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    protocol = _protocol(
        protocol_text,
        write_protocol,
        basis="regulatory",
        note="[S~] paraphrase of the guidance; same day [D]",
        kinds=("guidance", None),
    )
    report = check_evidence(protocol)
    assert _reasons(report, "error") == [
        "evidence.note: basis 'regulatory' needs a claim verified in the source text ([S]) "
        "in the note; it has only [S~] and [D]: at most 'guideline'"
    ]
    assert [row.assessment for row in report.unverified] == ["visit"]
    finding = report.errors[0]
    assert str(finding).startswith(
        f"error: {protocol.source}, assessment 'visit', field 'evidence.note': "
    )


def test_regulatory_with_only_a_default_is_at_most_a_local_default(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    protocol = _protocol(
        protocol_text, write_protocol, basis="regulatory", note="[D] ours", kinds=("guidance", None)
    )
    assert _reasons(check_evidence(protocol), "error") == [
        "evidence.note: basis 'regulatory' needs a claim verified in the source text ([S]) "
        "in the note; it has only [D]: at most 'local-default'"
    ]


@pytest.mark.parametrize("kind", ["trial", "literature", "summary", "registry", "guideline"])
def test_regulatory_on_sources_that_are_no_regulator_text_fails(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, kind: str
) -> None:
    protocol = _protocol(
        protocol_text,
        write_protocol,
        basis="regulatory",
        note="[S] stage 5 must be reached",
        kinds=(kind, "literature"),
        sources="[REF-1, REF-2]",
    )
    assert _reasons(check_evidence(protocol), "error") == [
        "evidence.sources: basis 'regulatory' needs a regulator's text (kind regulation or "
        f"guidance) among the sources; they are REF-1 [{kind}], REF-2 [literature]"
    ]


def test_an_unclassified_source_is_a_warning_unless_strict(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    protocol = _protocol(
        protocol_text,
        write_protocol,
        basis="regulatory",
        note="[S] quoted",
        kinds=(None, "trial"),
        sources="[REF-1, REF-2]",
    )
    expected = (
        "evidence.sources: unclassified source REF-1: cannot tell whether basis 'regulatory' "
        "has a regulator's text (kind regulation or guidance) (give the reference a 'kind')"
    )
    report = check_evidence(protocol)
    assert _reasons(report, "warning") == [expected]
    assert report.errors == ()
    assert _reasons(check_evidence(protocol, strict=True), "error") == [expected]


def test_a_classified_supporting_source_needs_no_kind_on_the_others(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    protocol = _protocol(
        protocol_text,
        write_protocol,
        basis="guideline",
        note="[S~] registry windows",
        kinds=(None, "registry"),
        sources="[REF-1, REF-2]",
    )
    assert check_evidence(protocol, strict=True).findings == ()


def test_guideline_needs_a_claim_from_a_source(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    protocol = _protocol(
        protocol_text,
        write_protocol,
        basis="guideline",
        note="cadence [D]",
        kinds=("guideline", None),
    )
    assert _reasons(check_evidence(protocol), "error") == [
        "evidence.note: basis 'guideline' needs a claim from a source ([S] or [S~]) in the "
        "note; it has only [D]: at most 'local-default'"
    ]
    untagged = _protocol(
        protocol_text, write_protocol, basis="guideline", note=None, kinds=("guideline", None)
    )
    assert "it has no evidence tag" in _reasons(check_evidence(untagged), "error")[0]


def test_guideline_on_one_trial_fails(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    protocol = _protocol(
        protocol_text,
        write_protocol,
        basis="guideline",
        note="[S] entry criterion",
        kinds=("trial", None),
    )
    assert _reasons(check_evidence(protocol), "error") == [
        "evidence.sources: basis 'guideline' needs a regulation, guidance, registry rules or "
        "a published guideline among the sources; they are REF-1 [trial]"
    ]


def test_an_unknown_kind_is_refused_at_load(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(
        replace={"    title: Reference one\n": "    title: Reference one\n    kind: blog\n"}
    )
    with pytest.raises(rules.ProtocolError, match=re.escape("field 'references.REF-1.kind'")):
        rules.load_protocol(write_protocol(text))


def test_the_report_lists_rows_by_basis_sources_and_unverified_claims(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(
        """
        - id: rcl
          name: RCL test
          category: vector
          schedule:
            - at: [M3]
          window: [-7, 7]
          evidence:
            basis: regulatory
            sources: [REF-2]
            note: "[S~] paraphrase"
        """,
        replace={"    title: Reference two\n": "    title: Reference two\n    kind: guidance\n"},
    )
    report = check_evidence(rules.load_protocol(write_protocol(text)), source="p.yaml")
    printed = rules.format_evidence_report(report).splitlines()
    assert printed[0] == "test-protocol version 1.0 (p.yaml): 2 assessments"
    assert printed[1:7] == [
        "  regulatory: 1",
        "    rcl: REF-2 [guidance]",
        "  guideline: 1",
        "    visit: REF-1 [unclassified]",
        "  local-default: 0",
        "  unverified claims [S~]: 1",
    ]
    assert printed[7] == "    rcl (regulatory): [S~] paraphrase"
    assert "    REF-2 [guidance]: Reference two" in printed
    assert "  findings: 2 errors, 1 warnings" in printed
    assert rules.summarize([report]) == (
        "evidence: 1 protocol files, 2 assessments (regulatory 1, guideline 1, "
        "local-default 0); 1 unverified claims [S~]; 2 errors, 1 warnings"
    )


# -- versions: only the newest version of a protocol id can fail ---------------------------

OVERSTATED = {  # the visit claims 'regulatory' on a paraphrase: an error in any version
    VISIT_EVIDENCE: '      basis: regulatory\n      sources: [REF-1]\n      note: "[S~] x"\n',
    "    title: Reference one\n": "    title: Reference one\n    kind: guidance\n",
}


def _versions(
    protocol_text: ProtocolText,
    write_protocol: WriteProtocol,
    *versions: str,
    unclassified: bool = False,
) -> list[rules.Protocol]:
    loaded = []
    for version in versions:
        replace = {**OVERSTATED, 'version: "1.0"': f'version: "{version}"'}
        if unclassified:
            del replace["    title: Reference one\n"]
        path = write_protocol(protocol_text(replace=replace), name=f"p-{version}.yaml")
        loaded.append(rules.load_protocol(path))
    return loaded


def test_only_the_newest_version_fails_an_older_one_warns(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    old, new = _versions(protocol_text, write_protocol, "1.0", "1.1")
    reports = rules.check_all_evidence([old, new])
    assert [r.version for r in reports] == ["1.0", "1.1"]  # in the order given
    superseded, newest = reports
    assert superseded.superseded_by == "1.1"
    assert superseded.errors == ()
    assert [f.field for f in superseded.warnings] == ["evidence.note"]
    assert str(superseded.warnings[0]).startswith(
        f"warning: {old.source}, assessment 'visit', field 'evidence.note': basis "
        "'regulatory' needs a claim verified in the source text ([S])"
    )
    assert str(superseded.warnings[0]).endswith(": at most 'guideline' (superseded by 1.1)")
    assert newest.superseded_by is None
    assert [f.field for f in newest.errors] == ["evidence.note"]
    assert not str(newest.errors[0]).endswith(")")


def test_a_superseded_version_warns_under_strict_too(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    old, new = _versions(protocol_text, write_protocol, "1.0", "1.1", unclassified=True)
    assert rules.check_all_evidence([old, new])[1].errors[0].field == "evidence.note"
    superseded, newest = rules.check_all_evidence([old, new], strict=True)
    # REF-1 is unclassified: strict makes it an error in the newest version only.
    assert {f.field for f in newest.errors} == {"evidence.note", "evidence.sources"}
    assert superseded.errors == ()
    assert {f.field for f in superseded.warnings} == {"evidence.note", "evidence.sources"}
    assert all(f.superseded_by == "1.1" for f in superseded.warnings)


def test_the_newest_version_is_compared_as_numbers_and_per_protocol_id(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    v19, v110 = _versions(protocol_text, write_protocol, "1.9", "1.10")
    other = rules.load_protocol(
        write_protocol(
            protocol_text(replace={**OVERSTATED, "id: test-protocol": "id: other"}),
            name="other.yaml",
        )
    )
    assert rules.newest_versions([v110, v19, other]) == {"test-protocol": "1.10", "other": "1.0"}
    reports = {(r.protocol_id, r.version): r for r in rules.check_all_evidence([v19, v110, other])}
    assert reports["test-protocol", "1.9"].superseded_by == "1.10"
    assert reports["test-protocol", "1.9"].errors == ()
    assert len(reports["test-protocol", "1.10"].errors) == 1
    assert len(reports["other", "1.0"].errors) == 1  # another id: its own newest version


def test_a_version_checked_alone_is_the_newest_of_what_is_checked(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    (old,) = _versions(protocol_text, write_protocol, "1.0")
    (report,) = rules.check_all_evidence([old])
    assert report.superseded_by is None
    assert len(report.errors) == 1


def test_the_report_and_the_summary_say_which_version_is_superseded(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    old, new = _versions(protocol_text, write_protocol, "1.0", "1.1")
    reports = rules.check_all_evidence([old, new], source=lambda p: f"p-{p.version}.yaml")
    printed = rules.format_evidence_report(reports[0]).splitlines()
    assert printed[0] == (
        "test-protocol version 1.0 (p-1.0.yaml): 1 assessments, superseded by 1.1 "
        "(findings are warnings)"
    )
    assert "  findings: 0 errors, 1 warnings" in printed
    assert printed[-1].startswith("    warning: p-1.0.yaml, assessment 'visit', ")
    assert printed[-1].endswith(" (superseded by 1.1)")
    assert rules.format_evidence_report(reports[1]).splitlines()[0] == (
        "test-protocol version 1.1 (p-1.1.yaml): 1 assessments"
    )
    assert rules.summarize(reports) == (
        "evidence: 2 protocol files (1 superseded), 2 assessments (regulatory 2, guideline 0, "
        "local-default 0); 2 unverified claims [S~]; 1 errors, 1 warnings"
    )

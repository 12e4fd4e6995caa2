"""The evidence check: does each assessment's ``basis`` claim more than its note and
sources support?

The rule (``surveillance protocols check --evidence``; README "Evidence check"):

Tags in ``evidence.note``: ``[S]`` a claim taken from the source text and checked there,
``[S~]`` a claim from a summary, still to be checked against the primary text, ``[D]`` our
default. A reference's ``kind`` says what it is; ``regulation`` and ``guidance`` are a
regulator's own text.

- ``local-default``: always passes.
- ``guideline``: the note carries ``[S]`` or ``[S~]`` (a claim from a source, not only our
  default), and at least one source is a regulation, a regulator's guidance, a registry's
  rules or a published guideline (``regulation | guidance | registry | guideline``).
- ``regulatory``: the note carries ``[S]`` (a verified claim: a note with only ``[S~]`` is
  at most ``guideline``), and at least one source is a regulator's text
  (``regulation | guidance``).

A source without a ``kind`` is *unclassified*. The tag rules are always decided. The source
rules fail only when every source is classified and none is of a supporting kind; when the
supporting source could be among the unclassified ones, the check warns ("unclassified
source") instead, or fails with ``strict=True``.

Versions: only the newest version of each protocol id among the files checked can fail
(``check_all_evidence``). A superseded version's findings are all warnings, each ending
"(superseded by <newest>)": a released version file stays as it was, and the patients on
it are moved to the new version by ``surveillance amend``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ._loader import _version_key
from ._protocol import Protocol
from ._schema import AssessmentRule, Basis, ReferenceKind

TAG = re.compile(r"\[(S~|S|D)\]")
VERIFIED, UNVERIFIED, DEFAULT = "S", "S~", "D"

REGULATOR_KINDS = frozenset({ReferenceKind.regulation, ReferenceKind.guidance})
GUIDELINE_KINDS = REGULATOR_KINDS | {ReferenceKind.registry, ReferenceKind.guideline}
_SUPPORTING = {Basis.regulatory: REGULATOR_KINDS, Basis.guideline: GUIDELINE_KINDS}
_WHAT = {
    Basis.regulatory: "a regulator's text (kind regulation or guidance)",
    Basis.guideline: "a regulation, guidance, registry rules or a published guideline",
}


def note_tags(note: str | None) -> frozenset[str]:
    """The evidence tags in a note: ``{"S", "S~", "D"}`` or a subset.

    >>> sorted(note_tags("[S~]/[D] test archived samples; [S] quoted"))
    ['D', 'S', 'S~']
    """
    return frozenset(TAG.findall(note or ""))


@dataclass(frozen=True)
class SourceRef:
    key: str
    title: str
    url: str | None
    kind: ReferenceKind | None

    def label(self) -> str:
        return f"{self.key} [{self.kind.value if self.kind else 'unclassified'}]"


@dataclass(frozen=True)
class EvidenceRow:
    assessment: str
    name: str
    basis: Basis
    sources: tuple[SourceRef, ...]
    note: str | None
    tags: frozenset[str]

    @property
    def unverified(self) -> bool:
        return UNVERIFIED in self.tags


@dataclass(frozen=True)
class Finding:
    """A row whose basis its evidence does not support (``error``), or cannot be shown to
    support because a source is unclassified (``warning``)."""

    level: str  # "error" or "warning"
    source: str
    assessment: str
    field: str
    reason: str
    # The newest version, when this finding is in a superseded one (then always a warning).
    superseded_by: str | None = None

    def __str__(self) -> str:
        where = f"{self.source}, assessment '{self.assessment}', field '{self.field}'"
        after = f" (superseded by {self.superseded_by})" if self.superseded_by else ""
        return f"{self.level}: {where}: {self.reason}{after}"


@dataclass(frozen=True)
class EvidenceReport:
    protocol_id: str
    version: str
    source: str
    references: tuple[SourceRef, ...]
    rows: tuple[EvidenceRow, ...]
    findings: tuple[Finding, ...]
    superseded_by: str | None = None  # the newest version, when this one is superseded

    def by_basis(self, basis: Basis) -> tuple[EvidenceRow, ...]:
        return tuple(row for row in self.rows if row.basis is basis)

    @property
    def unverified(self) -> tuple[EvidenceRow, ...]:
        return tuple(row for row in self.rows if row.unverified)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "warning")


def check_evidence(
    protocol: Protocol,
    *,
    strict: bool = False,
    source: str | None = None,
    superseded_by: str | None = None,
) -> EvidenceReport:
    """Every assessment's evidence, and what its basis claims beyond it (see the module).

    ``strict``: an unclassified source that could support the basis fails the row too.
    ``source``: how findings name the file (default: the path it was loaded from).
    ``superseded_by``: the newest version of the protocol when this one is older: every
    finding is then a warning that says so, and the report has no errors.
    """
    spec = protocol.spec
    named = source or protocol.source
    references = {
        key: SourceRef(key, ref.title, ref.url, ref.kind) for key, ref in spec.references.items()
    }
    rows: list[EvidenceRow] = []
    findings: list[Finding] = []
    for rule in spec.assessments:
        row = EvidenceRow(
            assessment=rule.id,
            name=rule.name,
            basis=rule.evidence.basis,
            sources=tuple(references[key] for key in rule.evidence.sources),
            note=rule.evidence.note,
            tags=note_tags(rule.evidence.note),
        )
        rows.append(row)
        findings.extend(_judge(row, rule, named, strict=strict))
    if superseded_by is not None:
        findings = [replace(f, level="warning", superseded_by=superseded_by) for f in findings]
    return EvidenceReport(
        protocol_id=protocol.id,
        version=protocol.version,
        source=named,
        references=tuple(references.values()),
        rows=tuple(rows),
        findings=tuple(findings),
        superseded_by=superseded_by,
    )


def newest_versions(protocols: Iterable[Protocol]) -> dict[str, str]:
    """The newest version of each protocol id among ``protocols`` ("1.10" after "1.9")."""
    newest: dict[str, str] = {}
    for protocol in protocols:
        known = newest.get(protocol.id)
        if known is None or _version_key(protocol.version) > _version_key(known):
            newest[protocol.id] = protocol.version
    return newest


def check_all_evidence(
    protocols: Iterable[Protocol],
    *,
    strict: bool = False,
    source: Callable[[Protocol], str] | None = None,
) -> list[EvidenceReport]:
    """``check_evidence`` on each protocol, in order; only the newest version of each id
    (among these) can fail, the older ones report their findings as warnings.

    ``source(protocol)``: how findings name its file (default: the path it was loaded from).
    """
    protocols = list(protocols)
    newest = newest_versions(protocols)
    return [
        check_evidence(
            protocol,
            strict=strict,
            source=source(protocol) if source else None,
            superseded_by=None if protocol.version == newest[protocol.id] else newest[protocol.id],
        )
        for protocol in protocols
    ]


def _judge(row: EvidenceRow, rule: AssessmentRule, source: str, *, strict: bool) -> list[Finding]:
    basis = row.basis
    if basis is Basis.local_default:
        return []
    found: list[Finding] = []

    def finding(level: str, field: str, reason: str) -> None:
        found.append(Finding(level, source, rule.id, field, reason))

    if basis is Basis.regulatory and VERIFIED not in row.tags:
        has = _tags_text(row.tags)
        finding(
            "error",
            "evidence.note",
            f"basis 'regulatory' needs a claim verified in the source text ([S]) in the "
            f"note; it has {has}: at most "
            f"'{'guideline' if UNVERIFIED in row.tags else 'local-default'}'",
        )
    if basis is Basis.guideline and not row.tags & {VERIFIED, UNVERIFIED}:
        finding(
            "error",
            "evidence.note",
            f"basis 'guideline' needs a claim from a source ([S] or [S~]) in the note; it "
            f"has {_tags_text(row.tags)}: at most 'local-default'",
        )
    supporting = _SUPPORTING[basis]
    if any(ref.kind in supporting for ref in row.sources):
        return found
    unclassified = [ref.key for ref in row.sources if ref.kind is None]
    if not unclassified:
        kinds = ", ".join(ref.label() for ref in row.sources)
        finding(
            "error",
            "evidence.sources",
            f"basis '{basis.value}' needs {_WHAT[basis]} among the sources; they are {kinds}",
        )
    else:
        finding(
            "error" if strict else "warning",
            "evidence.sources",
            f"unclassified source {', '.join(unclassified)}: cannot tell whether basis "
            f"'{basis.value}' has {_WHAT[basis]} (give the reference a 'kind')",
        )
    return found


def _tags_text(tags: frozenset[str]) -> str:
    if not tags:
        return "no evidence tag"
    order = [VERIFIED, UNVERIFIED, DEFAULT]
    return "only " + " and ".join(f"[{tag}]" for tag in order if tag in tags)


def format_evidence_report(report: EvidenceReport) -> str:
    """The report as ``surveillance protocols check --evidence`` prints it (findings too)."""
    superseded = (
        f", superseded by {report.superseded_by} (findings are warnings)"
        if report.superseded_by
        else ""
    )
    lines = [
        f"{report.protocol_id} version {report.version} ({Path(report.source).name}): "
        f"{len(report.rows)} assessments{superseded}"
    ]
    for basis in Basis:
        rows = report.by_basis(basis)
        lines.append(f"  {basis.value}: {len(rows)}")
        for row in rows:
            lines.append(f"    {row.assessment}: {', '.join(s.label() for s in row.sources)}")
    unverified = report.unverified
    lines.append(f"  unverified claims [S~]: {len(unverified)}")
    for row in unverified:
        lines.append(f"    {row.assessment} ({row.basis.value}): {row.note}")
    used = {ref.key for row in report.rows for ref in row.sources}
    lines.append("  references:")
    for ref in report.references:
        unused = "" if ref.key in used else " (cited by no assessment)"
        lines.append(f"    {ref.label()}: {ref.title}{unused}")
    lines.append(f"  findings: {len(report.errors)} errors, {len(report.warnings)} warnings")
    lines.extend(f"    {finding}" for finding in report.findings)
    return "\n".join(lines)


def summarize(reports: Iterable[EvidenceReport]) -> str:
    """One line over all reports: counts by basis, unverified claims, errors, warnings."""
    reports = list(reports)
    rows = [row for report in reports for row in report.rows]
    counts = ", ".join(
        f"{basis.value} {sum(row.basis is basis for row in rows)}" for basis in Basis
    )
    errors = sum(len(report.errors) for report in reports)
    warnings = sum(len(report.warnings) for report in reports)
    unverified = sum(row.unverified for row in rows)
    superseded = sum(report.superseded_by is not None for report in reports)
    older = f" ({superseded} superseded)" if superseded else ""
    return (
        f"evidence: {len(reports)} protocol files{older}, {len(rows)} assessments ({counts}); "
        f"{unverified} unverified claims [S~]; {errors} errors, {warnings} warnings"
    )

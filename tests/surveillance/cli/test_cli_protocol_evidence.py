"""``surveillance protocols check --evidence`` and ``surveillance protocols doc``, run as the
installed console script (no database)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rules

SCRIPT = Path(sys.executable).parent / "surveillance"
CAR_T = "cd19-car-t-pediatric-autoimmune"
AAV = "aav-liver-5-year"


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"console script not installed at {SCRIPT}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEILLANCE_")}
    env["DATABASE_URL"] = f"sqlite:///{folder / 'x.db'}"
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _shipped_text(name: str) -> str:
    return (rules.BUNDLED_PROTOCOLS / f"{name}.yaml").read_text(encoding="utf-8")


def test_evidence_check_lists_rows_by_basis_and_unverified_claims(tmp_path: Path) -> None:
    done = _run(tmp_path, "protocols", "check", "--evidence")
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert f"{CAR_T} version 1.1 ({CAR_T}-1.1.yaml): 57 assessments\n" in out
    assert (
        f"{CAR_T} version 1.0 ({CAR_T}.yaml): 44 assessments, superseded by 1.1 "
        "(findings are warnings)\n"
    ) in out
    assert f"{AAV} version 1.0 ({AAV}.yaml): " in out
    for basis in ("regulatory", "guideline", "local-default"):
        assert f"\n  {basis}: " in out
    assert "\n    rcl_test: FDA-RCR [unclassified]\n" in out  # 1.0, released as it was
    assert "\n    rcl_test: FDA-RCR [guidance], FR-2020-RCR [guidance]\n" in out  # 1.1
    assert "  unverified claims [S~]: " in out
    assert out.rstrip().splitlines()[-1].startswith("evidence: 3 protocol files (1 superseded), ")
    # Every error line names the file, the assessment and the field.
    for line in done.stderr.splitlines():
        assert line.startswith("error: ")
        assert ", assessment '" in line
        assert ", field '" in line


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_the_shipped_protocols_pass_the_evidence_check(tmp_path: Path, strict: bool) -> None:
    done = _run(tmp_path, "protocols", "check", "--evidence", *(["--strict"] if strict else []))
    assert done.stderr == ""
    assert done.returncode == 0
    summary = done.stdout.splitlines()[-1]
    assert summary.startswith("evidence: 3 protocol files (1 superseded), 114 assessments (")
    assert re.search(r"\(regulatory \d+, guideline \d+, local-default \d+\)", summary)
    assert " 0 errors, " in summary
    # The newest versions are clean, every reference classified; the counts by basis are
    # listed per file. Only the superseded 1.0 still has findings, all warnings.
    reports = done.stdout.split("\n\n")
    newest = [r for r in reports if r.startswith((f"{AAV} version 1.0", f"{CAR_T} version 1.1"))]
    assert len(newest) == 2
    for report in newest:
        assert "  findings: 0 errors, 0 warnings" in report
        assert "[unclassified]" not in report
        for basis in ("regulatory", "guideline", "local-default"):
            assert re.search(rf"\n  {basis}: \d+\n", report), basis
    (old,) = [r for r in reports if r.startswith(f"{CAR_T} version 1.0")]
    warnings = [line for line in old.splitlines() if line.startswith("    warning: ")]
    assert warnings
    assert all(line.endswith(" (superseded by 1.1)") for line in warnings)


def test_an_overstated_row_fails_with_file_assessment_and_field(tmp_path: Path) -> None:
    text = _shipped_text(AAV)
    old = '      basis: local-default\n      sources: [SHED-2015]\n      note: "[S] FDA 2015'
    assert text.count(old) == 1
    # 'regulatory' on our own default: the quote's [S] tag removed, only [D] is left.
    new = old.replace("local-default", "regulatory").replace('"[S] FDA', '"FDA')
    (tmp_path / "overstated.yaml").write_text(text.replace(old, new), encoding="utf-8")
    done = _run(tmp_path, "protocols", "check", "--evidence", "overstated.yaml")
    assert done.returncode == 1
    assert (
        "error: overstated.yaml, assessment 'aav_shedding', field 'evidence.note': basis "
        "'regulatory' needs a claim verified in the source text ([S]) in the note; it has "
        "only [D]: at most 'local-default'"
    ) in done.stderr.splitlines()


def test_strict_fails_on_unclassified_sources_that_kinds_would_settle(tmp_path: Path) -> None:
    shipped = _shipped_text(AAV)
    # The shipped file with every reference's kind removed: its guideline rows quote their
    # source ([S]); only the kind is missing.
    unclassified = re.sub(r"(?m)^    kind: [a-z]+\n", "", shipped)
    assert unclassified != shipped
    (tmp_path / "a.yaml").write_text(unclassified, encoding="utf-8")
    lenient = _run(tmp_path, "protocols", "check", "--evidence", "a.yaml")
    assert lenient.returncode == 0, lenient.stderr
    assert "warning: a.yaml, assessment 'aav_baseline'" in lenient.stdout
    strict = _run(tmp_path, "protocols", "check", "--evidence", "--strict", "a.yaml")
    assert strict.returncode == 1
    assert (
        "error: a.yaml, assessment 'aav_baseline', field 'evidence.sources': "
        "unclassified source Valrox-liver" in strict.stderr
    )
    (tmp_path / "b.yaml").write_text(shipped, encoding="utf-8")
    done = _run(tmp_path, "protocols", "check", "--evidence", "--strict", "b.yaml")
    assert done.returncode == 0, done.stderr
    assert "0 errors, 0 warnings" in done.stdout.splitlines()[-1]


def test_check_without_evidence_still_only_validates(tmp_path: Path) -> None:
    done = _run(tmp_path, "protocols", "check")
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == ["ok", "ok", "ok"]


def test_doc_prints_one_page_and_writes_every_page(tmp_path: Path) -> None:
    protocol = rules.ProtocolRegistry.from_directory().get(CAR_T, "1.0")
    printed = _run(tmp_path, "protocols", "doc", "--protocol", CAR_T, "--version", "1.0")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == rules.protocol_markdown(protocol)
    written = _run(tmp_path, "protocols", "doc", "--output-dir", "pages")
    assert written.returncode == 0, written.stderr
    names = sorted(p.name for p in (tmp_path / "pages").iterdir())
    assert names == [f"{AAV}-1.0.md", f"{CAR_T}-1.0.md", f"{CAR_T}-1.1.md"]
    assert (tmp_path / "pages" / f"{CAR_T}-1.0.md").read_text(encoding="utf-8") == printed.stdout


def test_doc_needs_a_protocol_or_a_folder(tmp_path: Path) -> None:
    done = _run(tmp_path, "protocols", "doc")
    assert done.returncode == 2
    assert done.stderr.startswith("error: name the protocol with --protocol")
    unknown = _run(tmp_path, "protocols", "doc", "--protocol", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: unknown protocol 'nope'")

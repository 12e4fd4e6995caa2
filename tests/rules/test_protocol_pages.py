"""The review pages in docs/protocols are exactly what the generator makes of the shipped
protocol files: regenerate them with ``surveillance protocols doc --output-dir
docs/protocols`` after changing a protocol (README "Protocol files")."""

from __future__ import annotations

from pathlib import Path

import pytest

import rules

PAGES = Path(__file__).resolve().parents[2] / "docs" / "protocols"
REGENERATE = "regenerate with: surveillance protocols doc --output-dir docs/protocols"
SHIPPED = rules.ProtocolRegistry.from_directory().all()


def test_every_shipped_protocol_version_has_a_page_and_no_page_is_stale() -> None:
    expected = {rules.page_name(p) for p in SHIPPED}
    assert {page.name for page in PAGES.glob("*.md")} == expected, REGENERATE


@pytest.mark.parametrize("protocol", SHIPPED, ids=lambda p: f"{p.id}-{p.version}")
def test_the_committed_page_is_what_the_generator_makes(protocol: rules.Protocol) -> None:
    page = PAGES / rules.page_name(protocol)
    assert page.exists(), REGENERATE
    assert page.read_text(encoding="utf-8") == rules.protocol_markdown(protocol), REGENERATE


def test_a_page_names_schedule_windows_branches_and_evidence() -> None:
    car_t = rules.ProtocolRegistry.from_directory().get("cd19-car-t-pediatric-autoimmune", "1.0")
    page = rules.protocol_markdown(car_t)
    section = page.split("### rcl_test\n", 1)[1].split("\n### ", 1)[0]
    assert "- **Schedule** (from the infusion): M3; then M6, M12" in section
    assert "- **Windows:** M3: −14/+14 days; M6, M12: −30/+30 days" in section
    assert (
        "  - when every planned result is negative → starts `rcl_archive`; stops "
        "`rcl_yearly_test` (first year negative: later yearly samples archived only)"
    ) in section
    assert "- **Basis:** regulatory" in section
    assert "<https://www.fda.gov/media/113790/download>" in section
    ltfu = page.split("### ltfu_contact\n", 1)[1].split("\n### ", 1)[0]
    assert "every year from Y6 to Y15" in ltfu
    assert "- **Applies to:** aged 18 or over at the due date" in ltfu

"""Adverse-event words as a nurse reads them: one label per stored value.

The stored values stay the E2B-shaped ones of ``records.adverse_event_vocabulary``; only the
pages say "CRS (cytokine release syndrome)" instead of ``crs``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from surveillance.kit.i18n import N_, gettext
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    ReporterQualification,
    Seriousness,
)

CATEGORIES: dict[str, str] = {
    Category.infection: N_("Infection"),
    Category.crs: N_("CRS (cytokine release syndrome)"),
    Category.icans: N_("ICANS (immune effector cell-associated neurotoxicity)"),
    Category.iec_hs: N_("IEC-HS (HLH-like syndrome)"),
    Category.hematologic: N_("Blood counts (cytopenia, bleeding, other haematologic)"),
    Category.neurologic: N_("Neurological (not ICANS)"),
    Category.autoimmune: N_("New or worse autoimmune / rheumatologic disease"),
    Category.malignancy: N_("New malignancy (any cancer)"),
    Category.other: N_("Other"),
}
GRADES: dict[str, str] = {
    "1": N_("1 – mild"),
    "2": N_("2 – moderate"),
    "3": N_("3 – severe"),
    "4": N_("4 – life-threatening"),
    "5": N_("5 – death"),
}
GRADE_SCALES: dict[str, str] = {
    GradeScale.ctcae_v5: "CTCAE v5",
    GradeScale.astct: N_("ASTCT (CRS/ICANS)"),
}
SERIOUSNESS: dict[str, str] = {
    Seriousness.death: N_("Resulted in death"),
    Seriousness.life_threatening: N_("Life-threatening"),
    Seriousness.hospitalization: N_("Hospitalisation, or a longer stay"),
    Seriousness.disability: N_("Lasting or significant disability"),
    Seriousness.congenital_anomaly: N_("Congenital anomaly / birth defect"),
    Seriousness.other_medically_important: N_("Other medically important event"),
}
RELATEDNESS: dict[str, str] = {
    Relatedness.not_assessed: N_("Not assessed yet"),
    Relatedness.related: N_("Related"),
    Relatedness.probably_related: N_("Probably related"),
    Relatedness.possibly_related: N_("Possibly related"),
    Relatedness.unlikely_related: N_("Unlikely related"),
    Relatedness.not_related: N_("Not related"),
}
OUTCOMES: dict[str, str] = {
    CaseOutcome.not_recovered: N_("Ongoing (not recovered yet)"),
    CaseOutcome.recovering: N_("Recovering"),
    CaseOutcome.recovered: N_("Recovered"),
    CaseOutcome.recovered_with_sequelae: N_("Recovered with lasting effects (sequelae)"),
    CaseOutcome.fatal: N_("Fatal"),
    CaseOutcome.unknown: N_("Unknown"),
}
REPORTERS: dict[str, str] = {
    ReporterQualification.physician: N_("Physician"),
    ReporterQualification.pharmacist: N_("Pharmacist"),
    ReporterQualification.other_health_professional: N_("Other health professional"),
    ReporterQualification.consumer: N_("Patient or family"),
}
ACKS: dict[str, str] = {
    "AA": N_("accepted"),
    "AE": N_("accepted with errors"),
    "AR": N_("rejected"),
}

# What the service calls a field (its error messages start with it) -> the form's label.
FIELD_LABELS: dict[str, str] = {
    "onset_date": N_("Onset date"),
    "end_date": N_("End date"),
    "awareness_date": N_("Date the site learned of it"),
    "last_info_date": N_("Date of this information"),
    "term": N_("What happened"),
    "meddra_code": N_("MedDRA code"),
    "meddra_version": N_("MedDRA version"),
    "category": N_("Category"),
    "grade": N_("Grade"),
    "grade_scale": N_("Grading scale"),
    "serious": N_("Serious"),
    "seriousness_criteria": N_("Why it is serious"),
    "relatedness": N_("Related to the therapy?"),
    "expected": N_("Expected"),
    "outcome": N_("Outcome"),
    "narrative": N_("Narrative"),
    "reason": N_("Reason"),
}


def label(table: dict[str, str], value: object) -> str:
    """The label of a stored value in the current language; the value itself if it has
    none (or "—" when empty)."""
    if value is None or value == "":
        return "—"
    text = table.get(str(value))
    return gettext(text) if text is not None else str(value)


class Translated(Mapping[str, str]):
    """A table whose labels are read in the language of the page being rendered."""

    def __init__(self, table: dict[str, str]) -> None:
        self._table = table

    def __getitem__(self, key: str) -> str:
        return gettext(self._table[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


def all_tables() -> dict[str, Mapping[str, str]]:
    """The tables the templates read (``ae.categories``, ...), translated when read."""
    return {
        "categories": Translated(CATEGORIES),
        "grades": Translated(GRADES),
        "grade_scales": Translated(GRADE_SCALES),
        "seriousness": Translated(SERIOUSNESS),
        "relatedness": Translated(RELATEDNESS),
        "outcomes": Translated(OUTCOMES),
        "reporters": Translated(REPORTERS),
        "acks": Translated(ACKS),
        "fields": Translated(FIELD_LABELS),
    }

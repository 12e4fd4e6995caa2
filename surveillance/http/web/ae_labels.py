"""Adverse-event words as a nurse reads them: one label per stored value.

The stored values stay the E2B-shaped ones of ``records.adverse_event_vocabulary``; only the
pages say "CRS (cytokine release syndrome)" instead of ``crs``.
"""

from __future__ import annotations

from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    ReporterQualification,
    Seriousness,
)

CATEGORIES: dict[str, str] = {
    Category.infection: "Infection",
    Category.crs: "CRS (cytokine release syndrome)",
    Category.icans: "ICANS (immune effector cell-associated neurotoxicity)",
    Category.iec_hs: "IEC-HS (HLH-like syndrome)",
    Category.hematologic: "Blood counts (cytopenia, bleeding, other haematologic)",
    Category.neurologic: "Neurological (not ICANS)",
    Category.autoimmune: "New or worse autoimmune / rheumatologic disease",
    Category.malignancy: "New malignancy (any cancer)",
    Category.other: "Other",
}
GRADES: dict[str, str] = {
    "1": "1 – mild",
    "2": "2 – moderate",
    "3": "3 – severe",
    "4": "4 – life-threatening",
    "5": "5 – death",
}
GRADE_SCALES: dict[str, str] = {
    GradeScale.ctcae_v5: "CTCAE v5",
    GradeScale.astct: "ASTCT (CRS/ICANS)",
}
SERIOUSNESS: dict[str, str] = {
    Seriousness.death: "Resulted in death",
    Seriousness.life_threatening: "Life-threatening",
    Seriousness.hospitalization: "Hospitalisation, or a longer stay",
    Seriousness.disability: "Lasting or significant disability",
    Seriousness.congenital_anomaly: "Congenital anomaly / birth defect",
    Seriousness.other_medically_important: "Other medically important event",
}
RELATEDNESS: dict[str, str] = {
    Relatedness.not_assessed: "Not assessed yet",
    Relatedness.related: "Related",
    Relatedness.probably_related: "Probably related",
    Relatedness.possibly_related: "Possibly related",
    Relatedness.unlikely_related: "Unlikely related",
    Relatedness.not_related: "Not related",
}
OUTCOMES: dict[str, str] = {
    CaseOutcome.not_recovered: "Ongoing (not recovered yet)",
    CaseOutcome.recovering: "Recovering",
    CaseOutcome.recovered: "Recovered",
    CaseOutcome.recovered_with_sequelae: "Recovered with lasting effects (sequelae)",
    CaseOutcome.fatal: "Fatal",
    CaseOutcome.unknown: "Unknown",
}
REPORTERS: dict[str, str] = {
    ReporterQualification.physician: "Physician",
    ReporterQualification.pharmacist: "Pharmacist",
    ReporterQualification.other_health_professional: "Other health professional",
    ReporterQualification.consumer: "Patient or family",
}
ACKS: dict[str, str] = {
    "AA": "accepted",
    "AE": "accepted with errors",
    "AR": "rejected",
}

# What the service calls a field (its error messages start with it) -> the form's label.
FIELD_LABELS: dict[str, str] = {
    "onset_date": "Onset date",
    "end_date": "End date",
    "awareness_date": "Date the site learned of it",
    "last_info_date": "Date of this information",
    "term": "What happened",
    "meddra_code": "MedDRA code",
    "meddra_version": "MedDRA version",
    "category": "Category",
    "grade": "Grade",
    "grade_scale": "Grading scale",
    "serious": "Serious",
    "seriousness_criteria": "Why it is serious",
    "relatedness": "Related to the therapy?",
    "expected": "Expected",
    "outcome": "Outcome",
    "narrative": "Narrative",
    "reason": "Reason",
}


def label(table: dict[str, str], value: object) -> str:
    """The label of a stored value; the value itself if it has none (or "—" when empty)."""
    if value is None or value == "":
        return "—"
    return table.get(str(value), str(value))


def all_tables() -> dict[str, dict[str, str]]:
    """The tables the templates read (``ae.categories``, ...)."""
    return {
        "categories": CATEGORIES,
        "grades": GRADES,
        "grade_scales": GRADE_SCALES,
        "seriousness": SERIOUSNESS,
        "relatedness": RELATEDNESS,
        "outcomes": OUTCOMES,
        "reporters": REPORTERS,
        "acks": ACKS,
        "fields": FIELD_LABELS,
    }

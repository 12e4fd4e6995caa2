"""The words of an adverse-event case, shaped after ICH E2B(R3) so a safety system can
turn a case into an ICSR. Values are the API's JSON values."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """Categories of special interest after an integrating-vector CAR-T product."""

    malignancy = "malignancy"  # new malignancy: starts tumour testing for the vector
    neurologic = "neurologic"
    autoimmune = "autoimmune"  # new or worsened rheumatologic/autoimmune disorder
    hematologic = "hematologic"
    infection = "infection"
    crs = "crs"
    icans = "icans"
    iec_hs = "iec_hs"  # immune effector cell-associated HLH-like syndrome
    other = "other"


class GradeScale(StrEnum):
    ctcae_v5 = "ctcae_v5"
    astct = "astct"  # ASTCT consensus grading: CRS and ICANS only, grades 1-4


class Seriousness(StrEnum):
    """E2B(R3) E.i.3.2 seriousness criteria."""

    death = "death"
    life_threatening = "life_threatening"
    hospitalization = "hospitalization"
    disability = "disability"
    congenital_anomaly = "congenital_anomaly"
    other_medically_important = "other_medically_important"


class Relatedness(StrEnum):
    related = "related"
    probably_related = "probably_related"
    possibly_related = "possibly_related"
    unlikely_related = "unlikely_related"
    not_related = "not_related"
    not_assessed = "not_assessed"


# A "suspected adverse reaction" (21 CFR 312.32(a)): a reasonable possibility that the
# product caused it. Not yet assessed counts as suspected until someone says otherwise.
SUSPECTED = frozenset(
    {
        Relatedness.related,
        Relatedness.probably_related,
        Relatedness.possibly_related,
        Relatedness.not_assessed,
    }
)


class CaseOutcome(StrEnum):
    """E2B(R3) E.i.7 outcome of the reaction at the time of the last observation."""

    recovered = "recovered"
    recovering = "recovering"
    not_recovered = "not_recovered"
    recovered_with_sequelae = "recovered_with_sequelae"
    fatal = "fatal"
    unknown = "unknown"


class ReporterQualification(StrEnum):
    """E2B(R3) C.2.r.4 (the reporter's name stays at the site)."""

    physician = "physician"
    pharmacist = "pharmacist"
    other_health_professional = "other_health_professional"
    consumer = "consumer"


def default_reporter(role: str) -> ReporterQualification:
    """Who reports when the form does not say: an investigator is a physician; a nurse or
    anyone else recording for the site, another health professional."""
    if role == "investigator":
        return ReporterQualification.physician
    return ReporterQualification.other_health_professional


class Change(StrEnum):
    created = "created"
    updated = "updated"
    nullified = "nullified"


class CaseStatus(StrEnum):
    open = "open"
    nullified = "nullified"  # entered in error: kept and readable, never deleted


class AckStatus(StrEnum):
    """E2B(R3) acknowledgement codes."""

    AA = "AA"  # accepted
    AE = "AE"  # accepted with errors
    AR = "AR"  # rejected


ACCEPTED = frozenset({AckStatus.AA, AckStatus.AE})

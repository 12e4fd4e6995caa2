"""Results that need a typed value: free text stored before results were typed that matched
no declared value (``Assessment.result_as_entered``), for the site's investigators.

Each is resolved by correcting the assessment to a typed value, with a reason (the
"Correct" form of the patient page, ``surveillance correct`` or the corrections API);
the correction clears the text as entered, and the row leaves this list.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

import rules
from surveillance.errors import UnknownProtocol
from surveillance.protocols.registry import assessment_name, get_protocol
from surveillance.records.patients import Assessment, OutcomeRecord, Patient, assessment_key

DEFAULT_LIMIT = 500


@dataclass(frozen=True)
class ResultToReview:
    key: str
    study_id: str
    assessment: str
    name: str
    performed_on: date
    as_entered: str
    expects: str  # what a typed value of this assessment is ("one of negative, positive")
    recorded_by: str | None  # who typed the text (the outcome version that stored it)
    recorded_at: datetime | None
    version: int  # the ETag a correction must carry

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "study_id": self.study_id,
            "assessment": self.assessment,
            "name": self.name,
            "performed_on": self.performed_on,
            "as_entered": self.as_entered,
            "expects": self.expects,
            "recorded_by": self.recorded_by,
            "recorded_at": self.recorded_at,
            "version": self.version,
        }


def results_to_review(
    session: Session,
    *,
    site_id: str,
    registry: rules.ProtocolRegistry,
    limit: int = DEFAULT_LIMIT,
) -> list[ResultToReview]:
    """The site's results awaiting a typed value, oldest performed first."""
    # The outcome version that stored the text: the newest one whose result was that text.
    stored_by = (
        select(func.max(col(OutcomeRecord.id)))
        .where(
            col(OutcomeRecord.assessment_id) == col(Assessment.id),
            col(OutcomeRecord.result) == col(Assessment.result_as_entered),
        )
        .correlate(Assessment)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Assessment, col(Patient.study_id), OutcomeRecord)
        .join(Patient, col(Patient.id) == col(Assessment.patient_id))
        .outerjoin(OutcomeRecord, col(OutcomeRecord.id) == stored_by)
        .where(
            col(Assessment.site_id) == site_id,
            col(Assessment.result_as_entered).is_not(None),
        )
        .order_by(col(Assessment.performed_on), col(Assessment.id))
        .limit(limit)
    ).all()
    return [_item(row, study_id, stored, registry) for row, study_id, stored in rows]


def count_results_to_review(session: Session, site_ids: Collection[str]) -> dict[str, int]:
    """How many results await a typed value per site (sites with none are left out)."""
    rows = session.execute(
        select(col(Assessment.site_id), func.count())
        .where(
            col(Assessment.site_id).in_(list(site_ids)),
            col(Assessment.result_as_entered).is_not(None),
        )
        .group_by(col(Assessment.site_id))
    ).all()
    return {str(site): int(count) for site, count in rows}


def _item(
    row: Assessment,
    study_id: str,
    stored: OutcomeRecord | None,
    registry: rules.ProtocolRegistry,
) -> ResultToReview:
    assert row.performed_on is not None
    assert row.result_as_entered is not None
    return ResultToReview(
        key=assessment_key(study_id, row.infusion_number, row.assessment, row.occurrence),
        study_id=study_id,
        assessment=row.assessment,
        name=assessment_name(registry, row.protocol_id, row.protocol_version, row.assessment),
        performed_on=row.performed_on,
        as_entered=row.result_as_entered,
        expects=_expects(registry, row),
        recorded_by=stored.recorded_by if stored else None,
        recorded_at=stored.recorded_at if stored else None,
        version=row.version,
    )


def _expects(registry: rules.ProtocolRegistry, row: Assessment) -> str:
    try:
        spec = get_protocol(registry, row.protocol_id, row.protocol_version).result_type(
            row.assessment
        )
    except UnknownProtocol:
        return "unknown: the protocol version is not loaded"
    return describe_expected(spec)


def describe_expected(spec: rules.ResultType | None) -> str:
    """What a typed value of ``spec`` is, in words an investigator reads beside the text."""
    if isinstance(spec, rules.CodedResult):
        return "one of " + ", ".join(spec.values)
    if isinstance(spec, rules.QuantityResult):
        units = " or ".join(rules.accepted_units(spec))
        return f"a number in {units} ({spec.min:g} to {spec.max:g} {spec.unit})"
    if isinstance(spec, rules.OrdinalResult):
        return f"a level from {spec.min} to {spec.max}"
    if isinstance(spec, rules.DateResult):
        return "a date (YYYY-MM-DD)"
    return "free text"

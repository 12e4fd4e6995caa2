"""The facts a calendar is computed from, and the calendar it gives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class PatientFacts:
    birth_date: date
    diagnosis: str
    sex: str = "U"


@dataclass(frozen=True)
class RecordedResult:
    """A result recorded for one planned assessment (``infusion``/``assessment``/``occurrence``)."""

    infusion: int
    assessment: str
    occurrence: int
    on: date
    value: str


@dataclass(frozen=True)
class RecordedEvent:
    """Something that happened to the patient: ``new_malignancy``, ``death``, ``withdrawal``..."""

    kind: str
    on: date
    # What it came from, named in the reasons of what it starts: "adverse event ROM-001-AE01".
    source: str | None = None
    # A fixed number for the series it starts on its day (e.g. the case number), so that
    # removing another event of that day (a nullified case) never renumbers this one's rows.
    series: int | None = None


# Occurrences of triggered rules are YYYYMMDD * 100 + n; time points of a schedule are
# numbered from 1 and never come near this.
TRIGGERED_OCCURRENCE_FLOOR = 100_000_000


def is_triggered_occurrence(occurrence: int) -> bool:
    """Whether an occurrence number belongs to a series started by a result or an event."""
    return occurrence >= TRIGGERED_OCCURRENCE_FLOOR


@dataclass(frozen=True)
class PlannedAssessment:
    """One required assessment at one time point, with its window and why it is there."""

    infusion: int
    assessment: str
    occurrence: int
    name: str
    category: str
    due: date
    window_start: date
    window_end: date
    protocol: str
    protocol_version: str
    reason: str
    basis: str

    @property
    def key(self) -> str:
        """Stable across re-computation: ``infusion:assessment:occurrence``."""
        return f"{self.infusion}:{self.assessment}:{self.occurrence}"

    def as_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "infusion": self.infusion,
            "assessment": self.assessment,
            "name": self.name,
            "category": self.category,
            "occurrence": self.occurrence,
            "due": self.due.isoformat(),
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "protocol": self.protocol,
            "protocol_version": self.protocol_version,
            "reason": self.reason,
            "basis": self.basis,
        }

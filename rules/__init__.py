"""The rules engine: protocol files in, 15-year follow-up calendars out.

Pure: no database, no clock, no network. Depends on the standard library, PyYAML,
pydantic, python-dateutil and pint (units of results) only; never imports
``surveillance`` or ``notifications``.

>>> from datetime import date
>>> protocol = ProtocolRegistry.from_directory().get("aav-liver-5-year")
>>> patient = PatientFacts(date(1990, 5, 1), "hemophilia_b")
>>> plan = build_calendar(protocol, patient, [date(2024, 1, 31)])
>>> plan[0].assessment, plan[0].due
('aav_baseline', datetime.date(2024, 1, 17))
"""

from ._engine import build_calendar, end_of_follow_up
from ._errors import InvalidFacts, InvalidResult, ProtocolError, RulesError, UnknownProtocol
from ._evidence import (
    EvidenceReport,
    EvidenceRow,
    Finding,
    check_all_evidence,
    check_evidence,
    format_evidence_report,
    newest_versions,
    note_tags,
    summarize,
)
from ._facts import (
    PatientFacts,
    PlannedAssessment,
    RecordedEvent,
    RecordedResult,
    is_triggered_occurrence,
)
from ._loader import BUNDLED_PROTOCOLS, ProtocolRegistry, load_protocol, parse_protocol
from ._offsets import Offset
from ._protocol import Protocol
from ._protocol_doc import page_name, protocol_markdown
from ._results import accepted_units
from ._schema import (
    Basis,
    CodedResult,
    DateResult,
    NoResult,
    OrdinalResult,
    QuantityResult,
    Reference,
    ReferenceKind,
    ResultType,
    SafetyCase,
)
from ._text import text_problem

__all__ = [
    "BUNDLED_PROTOCOLS",
    "Basis",
    "CodedResult",
    "DateResult",
    "EvidenceReport",
    "EvidenceRow",
    "Finding",
    "InvalidFacts",
    "InvalidResult",
    "NoResult",
    "Offset",
    "OrdinalResult",
    "PatientFacts",
    "PlannedAssessment",
    "Protocol",
    "ProtocolError",
    "ProtocolRegistry",
    "QuantityResult",
    "RecordedEvent",
    "RecordedResult",
    "Reference",
    "ReferenceKind",
    "ResultType",
    "RulesError",
    "SafetyCase",
    "UnknownProtocol",
    "accepted_units",
    "build_calendar",
    "check_all_evidence",
    "check_evidence",
    "end_of_follow_up",
    "format_evidence_report",
    "is_triggered_occurrence",
    "load_protocol",
    "newest_versions",
    "note_tags",
    "page_name",
    "parse_protocol",
    "protocol_markdown",
    "summarize",
    "text_problem",
]

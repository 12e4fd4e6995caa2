"""The registry of alert kinds: one declaration per kind says everything about it.

What raises it (a scan query, or the change or job that queues it), its re-check at send
time, its event data, its email (subject here, body in ``templates/<kind>.txt`` and, if
``html``, ``templates/<kind>.html``) and its webhook (summary and ``data`` schema, published
in the OpenAPI document). The scan, the dispatcher, the messages, the webhook endpoints and
the API documentation read this table; none of them switches on a kind's name.

The names themselves are ``records.outbox.AlertKind``: the adverse-event package, below
this one, queues some kinds in the same transaction as the case.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel
from sqlmodel import Session

from surveillance.alerting import payloads, rechecks, scan_queries
from surveillance.alerting.digests import digest_data
from surveillance.alerting.payloads import AdverseEventEventData, AssessmentEventData, EventData
from surveillance.alerting.rechecks import Recheck
from surveillance.alerting.scan_queries import Rows, Scope
from surveillance.kit.i18n import format_day, term
from surveillance.kit.i18n import gettext as _
from surveillance.records.outbox import Alert, AlertKind


@dataclass(frozen=True)
class ScanEach:
    """Raised by the scan in each (site, protocol) group: one alert per row that ``rows``
    selects (assessment id, patient id, reminder round), at each of ``levels``, by email
    to ``recipient`` and by webhook to every endpoint subscribed to the kind."""

    rows: Callable[[Scope, int], Rows]
    recipient: Callable[[str, int], str]  # (site id, level) -> a recipient group
    levels: tuple[int, ...] = (0,)
    per_patient: bool = False  # one alert per patient and assessment, not per assessment


class SweepScan(Protocol):
    def __call__(
        self, session: Session, *, now: datetime, overrides: dict[str, dict[str, Any]]
    ) -> int: ...


@dataclass(frozen=True)
class ScanAll:
    """Raised by the scan once per run, across sites: ``run`` queues what it finds."""

    run: SweepScan


@dataclass(frozen=True)
class Email:
    subject: Callable[[Alert, dict[str, Any]], str]  # (alert, event data) -> subject line
    html: bool = False  # templates/<kind>.html as well as templates/<kind>.txt


@dataclass(frozen=True)
class Webhook:
    """An event type receivers subscribe to, documented in the OpenAPI ``webhooks``."""

    summary: str
    schema: str  # the name of the body's schema in the OpenAPI document
    data: type[BaseModel]  # the body's ``data``
    note: str | None = None  # the body schema's description


@dataclass(frozen=True)
class Kind:
    name: AlertKind
    when: str  # what raises it, in a receiver's words (the webhook's description)
    data: EventData
    recheck: Recheck = rechecks.still_holds
    scan: ScanEach | ScanAll | None = None  # None: queued by a change or a job, not the scan
    email: Email | None = None
    webhook: Webhook | None = None
    about_delivery: bool = False  # tells the admins about the outbox itself


# Subjects are written when the email is rendered, in its reader's language (``_``).
SUBJECT_TERM = 70  # characters of a name or term in a subject; the body has it whole


def _short(text: str) -> str:
    """``text`` cut at a word, with an ellipsis, never mid-word or mid-phrase unmarked."""
    return textwrap.shorten(" ".join(text.split()), SUBJECT_TERM, placeholder=" …")


def _assessment_subject(label: str, data: dict[str, Any]) -> str:
    return _("[LTFU] {label}: {study_id} {name} (due {due}, {days} days overdue)").format(
        label=label,
        study_id=data["study_id"],
        name=_short(term(data["name"])),
        due=format_day(data["due"]),
        days=data["days_overdue"],
    )


def _case_subject(label: str, data: dict[str, Any]) -> str:
    case = data["case"]
    return _("[LTFU] {label}: {study_id} {term} ({case_id})").format(
        label=label, study_id=case["study_id"], term=_short(case["term"]), case_id=case["case_id"]
    )


def _admin_digest_subject(alert: Alert, data: dict[str, Any]) -> str:
    day = format_day(data["date"])
    if not data["intact"]:
        return _("[LTFU] Audit trail {date}: {problems} problem(s) found").format(
            date=day, problems=data["problems"]
        )
    anchor = data["anchor"]
    if anchor is None:
        return _("[LTFU] Audit trail {date}: no rows yet").format(date=day)
    return _("[LTFU] Audit trail {date}: intact, {rows} rows, head {hash}").format(
        date=day, rows=anchor["row_count"], hash=anchor["head_hash"][:12]
    )


def _site_group(role: str) -> Callable[[str, int], str]:
    return lambda site_id, level: f"site:{site_id}:{role}"


def _escalation_recipient(site_id: str, level: int) -> str:
    return f"site:{site_id}:investigator" if level == 1 else "admins"


def _case_change(name: AlertKind, when: str, summary: str, schema: str) -> Kind:
    """A case version recorded: a webhook only, queued with the version."""
    return Kind(
        name,
        when,
        payloads.case_data,
        webhook=Webhook(summary, schema, AdverseEventEventData),
    )


def _delivery_problem(name: AlertKind, when: str) -> Kind:
    """An email to the admins, written by the dispatcher with its payload."""
    return Kind(
        name,
        when,
        payloads.stored_data,
        email=Email(lambda alert, data: f"[LTFU] {data.get('what', alert.kind)}"),
        about_delivery=True,
    )


ALL_KINDS: tuple[Kind, ...] = (  # in the order of AlertKind
    Kind(
        AlertKind.assessment_overdue,
        "The day after an assessment's window closed undone.",
        payloads.assessment_data,
        recheck=rechecks.overdue_gone,
        scan=ScanEach(scan_queries.overdue, _site_group("nurse")),
        email=Email(lambda alert, data: _assessment_subject(_("Overdue"), data), html=True),
        webhook=Webhook("An assessment is overdue", "AssessmentOverdueEvent", AssessmentEventData),
    ),
    Kind(
        AlertKind.assessment_escalated,
        "Still undone 14 days after the window closed (level 1), and 60 days after (level 2); "
        "repeated weekly until acknowledged (defaults; see the alert policy).",
        payloads.assessment_data,
        recheck=rechecks.escalation_gone,
        scan=ScanEach(scan_queries.escalated, _escalation_recipient, levels=(1, 2)),
        email=Email(
            lambda alert, data: _assessment_subject(
                _("Escalation {level}").format(level=alert.level), data
            ),
            html=True,
        ),
        webhook=Webhook(
            "An overdue assessment is escalated", "AssessmentEscalatedEvent", AssessmentEventData
        ),
    ),
    Kind(
        AlertKind.patient_follow_up_at_risk,
        "Two consecutive yearly contacts missed or still undone.",
        payloads.assessment_data,
        recheck=rechecks.at_risk_gone,
        scan=ScanEach(scan_queries.at_risk, _site_group("investigator"), per_patient=True),
        email=Email(
            lambda alert, data: _("[LTFU] At risk of loss to follow-up: {study_id}").format(
                study_id=data["study_id"]
            )
        ),
        webhook=Webhook(
            "A patient is at risk of loss to follow-up",
            "FollowUpAtRiskEvent",
            AssessmentEventData,
            note="``data`` describes the latest of the two yearly contacts missed "
            "(or still undone).",
        ),
    ),
    _case_change(
        AlertKind.adverse_event_created,
        "An adverse-event case was recorded (version 1).",
        "An adverse-event case was recorded",
        "AdverseEventCreatedEvent",
    ),
    _case_change(
        AlertKind.adverse_event_updated,
        "A follow-up version of a case was recorded.",
        "A follow-up version of a case was recorded",
        "AdverseEventUpdatedEvent",
    ),
    _case_change(
        AlertKind.adverse_event_nullified,
        "A case entered in error was nullified (it stays readable).",
        "A case was nullified",
        "AdverseEventNullifiedEvent",
    ),
    Kind(
        AlertKind.adverse_event_serious,
        "A case is serious (when recorded, or when a follow-up makes it so); once per case. "
        "Also sent for a positive RCL test, which the system records as a serious case.",
        payloads.case_data,
        email=Email(lambda alert, data: _case_subject(_("Serious adverse event"), data)),
        webhook=Webhook("A case is serious", "AdverseEventSeriousEvent", AdverseEventEventData),
    ),
    Kind(
        AlertKind.adverse_event_unacknowledged,
        "A serious case's latest version was not accepted by every safety system in time.",
        payloads.case_data,
        recheck=rechecks.unacknowledged_gone,
        scan=ScanAll(scan_queries.unacknowledged),
        email=Email(lambda alert, data: _case_subject(_("Not acknowledged"), data)),
    ),
    Kind(
        AlertKind.digest,
        "Each morning at the site's digest hour: what opens today, what is due this week.",
        digest_data,
        email=Email(
            lambda alert, data: _(
                "[LTFU] {site} {date}: {opening} opening today, {week} due this week"
            ).format(
                site=data["site"],
                date=format_day(data["date"]),
                opening=len(data["opening"]),
                week=len(data["this_week"]),
            )
        ),
    ),
    Kind(
        AlertKind.admin_digest,
        "Each morning at 07:00 UTC, to the admins: the audit trail's anchor (row count, head "
        "row and hash) and a check of the chain.",
        payloads.stored_data,
        email=Email(_admin_digest_subject),
    ),
    _delivery_problem(
        AlertKind.alert_failed,
        "An alert failed for good (a permanent error, or its retries ran out).",
    ),
    _delivery_problem(
        AlertKind.webhook_disabled,
        "A webhook endpoint was disabled (410 Gone, or failing for days); its alerts wait.",
    ),
)

KINDS: dict[AlertKind, Kind] = {kind.name: kind for kind in ALL_KINDS}
# What an endpoint may subscribe to, in the order the API and the docs list them.
WEBHOOK_EVENTS: tuple[AlertKind, ...] = tuple(k.name for k in ALL_KINDS if k.webhook is not None)
SCANNED: tuple[Kind, ...] = tuple(k for k in ALL_KINDS if k.scan is not None)


def kind_of(name: str) -> Kind:
    """The declaration of a stored alert's kind (``ValueError`` for a name never declared)."""
    return KINDS[AlertKind(name)]

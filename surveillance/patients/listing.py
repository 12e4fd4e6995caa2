"""Which pending rows the due list reads: ``Assessment.listed``.

A patient who died or withdrew keeps, pending for good, the rows that were due before they
left; the list hides them by the patient's status. They are a site's oldest overdue rows,
so without this every page would read them first and drop them (at a site of 20 000
patients two rows of three read for a page). Unlisting them lets the list's index skip them.

Safe by construction: a row is unlisted only when its patient's follow-up has ended (no
change leads out of deceased or withdrawn) and its category is no reporting duty (owed
whatever the status); the list still checks the patient and the category, so a row left
listed costs a read, never a missing line. ``listed`` is derived, not clinical data: it is
neither audited nor a new version of the row (an ETag held by a client stays valid).
"""

from __future__ import annotations

from sqlalchemy import select, tuple_, update
from sqlmodel import Session, col

import rules
from surveillance.records.patients import ENDED_STATUSES, Assessment, AssessmentStatus, Patient

# The migration that added ``listed``: an upgrade past it unlists the rows of patients
# whose follow-up had already ended (``cli.context.upgrade_schema``).
LISTED_REVISION = "0014"


def unlist_ended(
    session: Session, *, registry: rules.ProtocolRegistry, patient_id: int | None = None
) -> int:
    """Unlist the pending rows of patients whose follow-up ended (``patient_id``'s, or
    everyone's) that are no reporting duty; the number of rows unlisted.

    Judged by ``registry``, and only for rows whose own protocol version it holds: the
    protocols agree on which categories are reporting duties (``rules`` refuses a category
    one declares a duty and another uses as an ordinary one), so for such a row "not among
    the registry's reporting categories" means not a duty. A row of a protocol it does not
    hold (a process started with other protocols, e.g. ``db upgrade`` run without the
    site's SURVEILLANCE_PROTOCOLS_DIR) stays listed: unlisting is never undone.

    Pending rows only: recorded history is left as it was written. A row that becomes
    pending again later (a re-plan reinstating it) stays listed: a read, never a loss."""
    ended = select(col(Patient.id)).where(col(Patient.status).in_(ENDED_STATUSES))
    if patient_id is not None:
        ended = ended.where(col(Patient.id) == patient_id)
    known = sorted((protocol.id, protocol.version) for protocol in registry.all())
    result = session.execute(
        update(Assessment)
        .where(
            col(Assessment.patient_id).in_(ended),
            col(Assessment.status) == AssessmentStatus.pending.value,
            col(Assessment.listed),
            tuple_(col(Assessment.protocol_id), col(Assessment.protocol_version)).in_(known),
            col(Assessment.category).not_in(sorted(registry.reporting_categories())),
        )
        .values(listed=False)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]

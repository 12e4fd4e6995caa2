"""Every permission denial (403) is in the audit trail: who, what, when, from where."""

from __future__ import annotations

import json

from sqlalchemy import select
from support.api_support import USERS, Api

from surveillance.kit.audit import AuditEntry, verify_chain
from surveillance.kit.db import read_session


def _denials(api: Api) -> list[AuditEntry]:
    with read_session(api.engine) as session:
        assert verify_chain(session) == []
        return list(
            session.execute(
                select(AuditEntry).where(AuditEntry.action == "permission_denied")  # type: ignore[arg-type]
            ).scalars()
        )


def test_a_nurse_refused_a_status_change_is_audited(api: Api) -> None:
    api.enroll()
    response = api.post(
        "/api/v1/patients/ROM-101/status",
        {"status": "withdrawn", "date": "2026-11-20", "reason": "consent withdrawn"},
        role="nurse",
        if_match='"1"',
    )
    assert response.status_code == 403
    [entry] = _denials(api)
    assert entry.actor == USERS["nurse"][0]
    assert entry.entity_key == "POST /api/v1/patients/ROM-101/status"
    details = json.loads(entry.new_values or "{}")
    assert details["client"] == "testclient"
    assert "investigators and administrators" in details["reason"]
    assert entry.at is not None


def test_pharmacovigilance_refused_a_site_is_audited(api: Api) -> None:
    assert api.get("/api/v1/sites/Rome/due", role="pharmacovigilance").status_code == 403
    [entry] = _denials(api)
    assert entry.actor == USERS["pharmacovigilance"][0]
    assert entry.entity_key == "GET /api/v1/sites/Rome/due"

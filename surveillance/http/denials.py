"""Every permission denial (403) in the audit trail: who, what, when, from where.

21 CFR 11.10(d)/(e) expect access attempts to be traceable. The caller is the one the
request's token or session resolved to (``request.state.principal``), else nobody signed in
(a sign-in form without its CSRF token).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from surveillance.kit import audit

log = logging.getLogger("surveillance.api")


async def record_denial(request: Request, reason: str) -> None:
    """Append a ``permission_denied`` row; a failure to write it is logged, not raised (the
    caller still gets its 403)."""
    # The app's ``deps.AppState`` (not imported: problems and deps are independent layers).
    state: Any = getattr(request.app.state, "surveillance", None)
    if state is None:
        return
    principal = getattr(request.state, "principal", None)
    actor = principal.email if principal is not None else "(not signed in)"
    what = f"{request.method} {request.url.path}"[:200]
    client = request.client.host if request.client else "unknown"

    def write() -> None:
        with state.write() as session:
            audit.record(
                session,
                actor=actor,
                action="permission_denied",
                entity="request",
                entity_key=what,
                new={"client": client, "reason": reason[:500]},
                at=state.now(),
            )

    try:
        await run_in_threadpool(write)
    except Exception:  # the denial stands; only its record is missing, and that is logged
        log.exception("could not audit a permission denial on %s", what)

"""What routes need, as typed dependencies: the database, the clock, the caller."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

import rules
from surveillance.accounts import throttle
from surveillance.accounts.auth import (
    Principal,
    TokenGrant,
    hash_token,
    record_token_failure,
    resolve_token,
)
from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.errors import NotFound, PreconditionFailed, PreconditionRequired, Unauthorized
from surveillance.http.cache import TtlCache
from surveillance.kit.clock import Clock
from surveillance.kit.db import is_sqlite, read_session, statement_read_session, write_session
from surveillance.kit.sqltypes import MAX_INTEGER
from surveillance.main import Runtime
from surveillance.records.patients import Patient, Site
from surveillance.records.queries import find_patient
from surveillance.records.sites import get_site, list_sites

T = TypeVar("T")
# Reads of up to this many rows run on the event loop on SQLite (see ``run_read``).
INLINE_READ_ROWS = 200


@dataclass(frozen=True)
class AppState:
    """The process's runtime, and what the HTTP edge keeps beside it."""

    runtime: Runtime
    # Token -> caller and site -> Site, kept a few seconds: every request needs them,
    # and looking them up cost more than the due list itself (benchmarks/api.py).
    principals: TtlCache[str, Principal] = field(default_factory=lambda: TtlCache(5.0))
    sites: TtlCache[str, Site] = field(default_factory=lambda: TtlCache(5.0))

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    @property
    def registry(self) -> rules.ProtocolRegistry:
        return self.runtime.registry

    @property
    def clock(self) -> Clock:
        return self.runtime.clock

    @property
    def base_url(self) -> str:
        return self.runtime.settings.base_url

    @property
    def throttle_limits(self) -> throttle.Limits:
        return throttle.limits_of(self.runtime.settings)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with read_session(self.engine) as session:
            yield session

    async def run_read(
        self, work: Callable[[Session], T], *, rows: int, statements_alone: bool = False
    ) -> T:
        """Run ``work`` in a read transaction, where this store answers fastest; with
        ``statements_alone``, in a ``statement_read_session`` (no transaction on PostgreSQL:
        for reads whose statements each stand alone, like a due-list page).

        SQLite, at most ``INLINE_READ_ROWS`` rows: on the event loop. sqlite3 lets go of
        the GIL at every row it steps; in a worker thread each of those lets another thread
        take the GIL, and the worker then waits up to the 5 ms switch interval to resume:
        that convoy is why a synchronous SQLite endpoint fell to ~100 requests/s at 50
        connections. A WAL read does not wait for writers, and it is CPU in this process
        either way, so on the loop it costs the same without the hand-offs. Larger reads
        (not to hold up other requests) and PostgreSQL (where the wait is a network round
        trip, with the GIL released once per query) run in a worker thread.
        """
        if rows <= INLINE_READ_ROWS and is_sqlite(self.engine):
            return self._read_with(work, statements_alone)
        return await run_in_threadpool(self._read_with, work, statements_alone)

    def _read_with(self, work: Callable[[Session], T], statements_alone: bool) -> T:
        read = statement_read_session if statements_alone else read_session
        with read(self.engine) as session:
            return work(session)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One unit of work: the change and its audit rows commit together or not at all."""
        with write_session(self.engine) as session:
            yield session

    def now(self) -> datetime:
        return self.clock()

    def site(self, session: Session, site_id: str) -> Site:
        """The site (``NotFound`` if unknown), from the cache when recently read."""
        site = self.sites.get(site_id)
        if site is None:
            site = get_site(session, site_id)
            self.sites.put(site_id, site)
        return site

    def today_at(self, site: Site) -> date:
        return site.today(self.now())


async def get_state(request: Request) -> AppState:
    # async: an attribute read needs no worker thread (sync dependencies each take one).
    state: AppState = request.app.state.surveillance
    return state


State = Annotated[AppState, Depends(get_state)]


def client_address(request: Request) -> str:
    """The address the request came from (the proxy's ``X-Forwarded-For`` is honoured only
    when the server is started to trust it: uvicorn's ``--proxy-headers``)."""
    return request.client.host if request.client else "unknown"


async def get_principal(
    request: Request, state: State, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller of a bearer token; a recently seen token needs no database or thread.

    A token not seen recently is checked against the throttle first: an address that sent
    too many invalid tokens gets 429 (``accounts.throttle``), and each invalid token is
    counted and audited.
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "send Authorization: Bearer <token> (create one with `surveillance tokens create`)"
        )
    key = hash_token(token.strip())
    principal = state.principals.get(key)
    if principal is None:
        principal = await run_in_threadpool(_resolve, state, token.strip(), client_address(request))
        state.principals.put(key, principal)
    request.state.principal = principal
    return principal


def _resolve(state: AppState, token: str, client: str) -> Principal:
    return checked_token(state, token, client).principal


def checked_token(state: AppState, token: str, client: str, *, kind: str = "api") -> TokenGrant:
    """What ``token`` grants, after the throttle let ``client`` try; an invalid token is
    counted and audited, then refused (401)."""
    with state.read() as session:
        throttle.check(
            session, account=None, client=client, now=state.now(), limits=state.throttle_limits
        )
        try:
            return resolve_token(session, token, kind=kind)
        except Unauthorized as refused:
            error = refused
    with state.write() as session:
        record_token_failure(
            session, token=token, client=client, now=state.now(), limits=state.throttle_limits
        )
    raise error


CurrentUser = Annotated[Principal, Depends(get_principal)]


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(if_match: str | None) -> int:
    """The version an update was made against; required on every update."""
    if if_match is None:
        raise PreconditionRequired('send If-Match with the ETag you read (e.g. If-Match: "3")')
    tag = if_match.strip().removeprefix("W/").strip('"')
    # ASCII digits within an Integer column: "²" is a digit to str.isdigit, not to int().
    if not (tag.isascii() and tag.isdigit()) or len(tag) > 10 or int(tag) > MAX_INTEGER:
        raise PreconditionFailed(f"If-Match {if_match[:40]!r} is not an ETag of this record")
    return int(tag)


# Required in effect (428 without it): the OpenAPI document says so (see http.openapi).
IF_MATCH_REQUIRED = "Required: the ETag you read (without it: 428)."
IfMatch = Annotated[str | None, Header(alias="If-Match", description=IF_MATCH_REQUIRED)]
# Where If-Match may be left out (a preview: the version is checked only if sent).
OptionalIfMatch = Annotated[
    str | None, Header(alias="If-Match", description="Optional: the ETag you read.")
]


def visible_patient(
    session: Session,
    user: Principal,
    study_id: str,
    *,
    missing: str = "no patient with study id {study_id!r}",
) -> Patient:
    """The patient, for clinical staff of its site. To anyone else (another site's staff,
    pharmacovigilance) it is missing exactly like an unknown one, so the answer tells
    nothing about which study ids exist; ``missing`` is how the edge words that (the
    API's detail, or the page's sentence)."""
    said = missing.format(study_id=study_id)
    values = {"study_id": study_id}
    if user.role not in CLINICAL_ROLES:
        raise NotFound(said, template=missing, values=values)
    patient = find_patient(session, study_id)
    if patient is None or not user.works_at(patient.site_id):
        raise NotFound(said, template=missing, values=values)
    return patient


def visible_site(session: Session, user: Principal, site_id: str) -> Site:
    """The site if the user works there; another site is reported missing, as is an unknown one."""
    user.require_site(site_id)
    return get_site(session, site_id)


def visible_sites(session: Session, user: Principal) -> list[Site]:
    """The sites the user works at (every site for an admin)."""
    return list_sites(session, only=None if user.is_admin else user.sites)

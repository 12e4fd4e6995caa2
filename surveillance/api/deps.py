"""What routes need, as typed dependencies: the database, the clock, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import Engine
from sqlmodel import Session

import rules

from ..auth import Principal, authenticate_token
from ..clock import Clock
from ..db import read_session, write_session
from ..errors import PreconditionFailed, PreconditionRequired, Unauthorized


@dataclass(frozen=True)
class AppState:
    engine: Engine
    registry: rules.ProtocolRegistry
    clock: Clock
    base_url: str

    @contextmanager
    def read(self) -> Iterator[Session]:
        with read_session(self.engine) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One unit of work: the change and its audit rows commit together or not at all."""
        with write_session(self.engine) as session:
            yield session

    def now(self) -> datetime:
        return self.clock()


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.surveillance
    return state


State = Annotated[AppState, Depends(get_state)]


def get_principal(state: State, authorization: Annotated[str | None, Header()] = None) -> Principal:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token> (create one with `surveillance tokens create`)")
    with state.read() as session:
        principal, _ = authenticate_token(session, token.strip())
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(if_match: str | None) -> int:
    """The version an update was made against; required on every update."""
    if if_match is None:
        raise PreconditionRequired("send If-Match with the ETag you read (e.g. If-Match: \"3\")")
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise PreconditionFailed(f"If-Match {if_match!r} is not an ETag of this record")
    return int(tag)


IfMatch = Annotated[str | None, Header(alias="If-Match")]

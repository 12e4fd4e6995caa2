"""Sites and their time zones."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlmodel import Session, col

from surveillance.errors import Conflict, InvalidInput, NotFound
from surveillance.kit.text import single_line, text_problem
from surveillance.records.patients import Site


def add_site(
    session: Session, *, site_id: str, name: str, timezone: str, country: str | None = None
) -> Site:
    single_line(site_id, "site_id")
    single_line(name, "name")
    if country is not None and not (len(country) == 2 and country.isascii() and country.isupper()):
        raise InvalidInput(f"country {country!r}: use an ISO 3166 two-letter code, e.g. IT")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"unknown time zone {timezone!r}: use an IANA name like Europe/Rome"
        ) from exc
    if session.get(Site, site_id) is not None:
        raise Conflict(f"site {site_id!r} already exists")
    site = Site(id=site_id, name=name, timezone=timezone, country=country)
    session.add(site)
    session.flush()
    return site


def get_site(session: Session, site_id: str) -> Site:
    # A site id that is not one line of text was never added (see add_site).
    site = session.get(Site, site_id) if text_problem(site_id) is None else None
    if site is None:
        known = ", ".join(session.execute(select(col(Site.id)).order_by(col(Site.id))).scalars())
        raise NotFound(
            f"unknown site {site_id!r}; known: "
            f"{known or 'none (add one with surveillance sites add)'}"
        )
    return site


def list_sites(session: Session, *, only: Collection[str] | None = None) -> list[Site]:
    """Every site by id, or those of ``only`` (a user's sites)."""
    statement = select(Site).order_by(col(Site.id))
    if only is not None:
        statement = statement.where(col(Site.id).in_(sorted(only)))
    return list(session.execute(statement).scalars())


def today_at(session: Session, site_id: str, now: datetime) -> date:
    """The date it is at the site at ``now`` (its own time zone)."""
    return get_site(session, site_id).today(now)

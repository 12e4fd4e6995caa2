"""The throwaway PostgreSQL cluster helper really starts, serves and stops a server."""

from __future__ import annotations

import os
import socket
import uuid

import psycopg
import pytest
from pg_cluster import ENV_URL, postgres_cluster
from sqlalchemy.engine import make_url


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.postgres
def test_cluster_serves_and_stops() -> None:
    external = bool(os.environ.get(ENV_URL))
    with postgres_cluster() as pg:
        url = make_url(pg.url)
        assert url.drivername == "postgresql+psycopg"
        if not external:
            assert url.host == "127.0.0.1"
            assert url.username == "postgres"
            assert url.database == "surveillance_test"

        with psycopg.connect(_libpq(pg.url)) as conn:
            row = conn.execute("select version()").fetchone()
        assert row is not None
        version: str = row[0]
        assert version.startswith("PostgreSQL")
        if pg.binaries is not None:
            assert version.startswith(f"PostgreSQL {pg.binaries.major}.")

        name = f"second_{uuid.uuid4().hex[:12]}"
        second_url = pg.create_database(name)
        try:
            assert make_url(second_url).database == name
            with psycopg.connect(_libpq(second_url)) as conn:
                row = conn.execute("select current_database()").fetchone()
            assert row == (name,)
        finally:
            pg.drop_database(name)

        port = pg.port
        assert _accepts_connections(port)

    if not external:
        assert not _accepts_connections(port)

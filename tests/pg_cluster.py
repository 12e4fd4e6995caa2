"""Throwaway PostgreSQL cluster for the test suite.

Usage::

    with postgres_cluster() as pg:
        engine = sqlalchemy.create_engine(pg.url)
        other_url = pg.create_database("scratch")

A fresh cluster is initialised in a temporary directory, started on a free
TCP port on 127.0.0.1 and torn down (``pg_ctl stop -m immediate`` plus removal
of the directory) when the context exits, even after an error.

If ``SURVEILLANCE_TEST_POSTGRES_URL`` is set, that server is used instead and
nothing is started or stopped.

``initdb`` refuses to run as root, so under root (as in CI) the server
binaries run as the unprivileged ``postgres`` system user via ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

ENV_URL = "SURVEILLANCE_TEST_POSTGRES_URL"
DEFAULT_DATABASE = "surveillance_test"
SUPERUSER = "postgres"
SYSTEM_USER = "postgres"
HOST = "127.0.0.1"

_INSTALL_HINT = "run scripts/ensure-system-packages to install the PostgreSQL server"
_START_ATTEMPTS = 3


class PostgresClusterError(RuntimeError):
    """The throwaway cluster could not be found, initialised or started."""


@dataclass(frozen=True)
class PostgresBinaries:
    initdb: Path
    pg_ctl: Path
    version: str  # e.g. "15.18", from ``pg_ctl --version``

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def _version_key(bin_dir: str) -> tuple[int, ...]:
    name = Path(bin_dir).parent.name  # /usr/lib/postgresql/<name>/bin
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


def find_postgres_binaries() -> PostgresBinaries:
    """Locate ``initdb`` and ``pg_ctl``: highest /usr/lib/postgresql/*/bin, else PATH."""
    candidates = [
        d
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if os.access(os.path.join(d, "initdb"), os.X_OK)
        and os.access(os.path.join(d, "pg_ctl"), os.X_OK)
    ]
    if candidates:
        bin_dir = Path(max(candidates, key=_version_key))
        initdb, pg_ctl = bin_dir / "initdb", bin_dir / "pg_ctl"
    else:
        found_initdb, found_pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
        if found_initdb is None or found_pg_ctl is None:
            raise PostgresClusterError(
                "PostgreSQL server binaries (initdb, pg_ctl) not found in "
                f"/usr/lib/postgresql/*/bin or on PATH; {_INSTALL_HINT}"
            )
        initdb, pg_ctl = Path(found_initdb), Path(found_pg_ctl)

    out = subprocess.run(
        [str(pg_ctl), "--version"], check=True, capture_output=True, text=True
    ).stdout
    match = re.search(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)*)", out)
    if match is None:
        raise PostgresClusterError(f"cannot parse PostgreSQL version from {out!r}")
    return PostgresBinaries(initdb=initdb, pg_ctl=pg_ctl, version=match.group(1))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _libpq_url(url: str | URL) -> str:
    """SQLAlchemy URL (``postgresql+psycopg://``) -> libpq conninfo URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class PostgresCluster:
    """A running PostgreSQL server and the URL of its ``surveillance_test`` database."""

    url: str
    """SQLAlchemy URL, ``postgresql+psycopg://postgres@127.0.0.1:PORT/surveillance_test``."""
    binaries: PostgresBinaries | None = None
    """The binaries used to start the server; ``None`` for an external server."""

    @property
    def port(self) -> int:
        port = make_url(self.url).port
        return 5432 if port is None else port

    def url_for(self, database: str) -> str:
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database ``name`` (optionally a copy of ``template``); return its URL."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(_libpq_url(self.url), autocommit=True) as conn:
            conn.execute(statement)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` (if present), disconnecting any sessions."""
        with psycopg.connect(_libpq_url(self.url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class _LocalServer:
    """Runs initdb/pg_ctl for one temporary cluster, as ``postgres`` when we are root."""

    def __init__(self, binaries: PostgresBinaries) -> None:
        self.binaries = binaries
        self.as_root = os.geteuid() == 0
        self.base = Path(tempfile.mkdtemp(prefix="surveillance-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.started = False
        if self.as_root:
            try:
                user = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                shutil.rmtree(self.base, ignore_errors=True)
                raise PostgresClusterError(
                    f"running as root but there is no {SYSTEM_USER!r} system user to run "
                    f"initdb as; {_INSTALL_HINT}"
                ) from None
            os.chown(self.base, user.pw_uid, user.pw_gid)

    def run(self, args: Sequence[str | Path]) -> subprocess.CompletedProcess[str]:
        cmd = [str(arg) for arg in args]
        if self.as_root:
            cmd = ["runuser", "-u", SYSTEM_USER, "--", *cmd]
        # cwd=base: the postgres user may not be able to enter the caller's cwd.
        return subprocess.run(cmd, cwd=self.base, capture_output=True, text=True, check=False)

    def check(self, args: Sequence[str | Path], what: str) -> None:
        proc = self.run(args)
        if proc.returncode != 0:
            raise PostgresClusterError(
                f"{what} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
                f"{self._log_tail()}"
            )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n--- server.log ---\n" + "\n".join(text.splitlines()[-lines:])

    def initdb(self) -> None:
        self.check(
            [
                self.binaries.initdb,
                "-D",
                self.data,
                "-A",
                "trust",
                "-U",
                SUPERUSER,
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            "initdb",
        )

    def start(self) -> int:
        """Start on a free port (retrying if another process grabs it first)."""
        last_error: PostgresClusterError | None = None
        for _ in range(_START_ATTEMPTS):
            port = _free_port()
            options = " ".join(
                [
                    f"-c listen_addresses={HOST}",
                    f"-c port={port}",
                    f"-c unix_socket_directories={self.base}",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                ]
            )
            start_cmd: list[str | Path] = [self.binaries.pg_ctl, "start", "-w", "-t", "60"]
            proc = self.run([*start_cmd, "-D", self.data, "-l", self.log, "-o", options])
            if proc.returncode == 0:
                self.started = True
                return port
            last_error = PostgresClusterError(
                f"pg_ctl start failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
                f"{self._log_tail()}"
            )
            if "could not bind" not in self._log_tail():
                break
        assert last_error is not None
        raise last_error

    def stop(self) -> None:
        # Even if start() reported failure a postmaster may be running; a pid file says so.
        if self.started or (self.data / "postmaster.pid").exists():
            self.run([self.binaries.pg_ctl, "stop", "-w", "-m", "immediate", "-D", self.data])
            self.started = False

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def postgres_cluster(database: str = DEFAULT_DATABASE) -> Iterator[PostgresCluster]:
    """Start a throwaway cluster (or use ``$SURVEILLANCE_TEST_POSTGRES_URL``).

    The yielded cluster's ``url`` points at ``database``, which is created in a
    freshly started cluster; an external server's URL is used as given.
    """
    external = os.environ.get(ENV_URL)
    if external:
        yield PostgresCluster(url=external)
        return

    server = _LocalServer(find_postgres_binaries())
    try:
        server.initdb()
        port = server.start()
        admin = PostgresCluster(
            url=URL.create(
                "postgresql+psycopg", username=SUPERUSER, host=HOST, port=port, database="postgres"
            ).render_as_string(hide_password=False),
            binaries=server.binaries,
        )
        url = admin.create_database(database)
        yield PostgresCluster(url=url, binaries=server.binaries)
    finally:
        server.cleanup()

"""The SQLite database and its -wal and -shm files, and the demo's passwords, are
owner-only whatever the umask of the process that creates them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from surveillance.kit import migrate
from surveillance.kit.db import make_engine, sqlite_file
from surveillance.kit.private_files import write_private_text


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def lenient_umask() -> Iterator[None]:
    """The usual 022: files readable by everyone unless the code says otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("lenient_umask")
def test_a_new_sqlite_database_and_its_wal_files_are_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "new" / "surveillance.db"
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:  # held open: the -wal and -shm files exist
            connection.execute(text("CREATE TABLE t (a INTEGER)"))
            connection.commit()
            files = sorted(p.name for p in database.parent.iterdir())
            assert files == ["surveillance.db", "surveillance.db-shm", "surveillance.db-wal"]
            assert {name: _mode(database.parent / name) for name in files} == dict.fromkeys(
                files, 0o600
            )
    finally:
        engine.dispose()
    assert _mode(database.parent) == 0o700


@pytest.mark.usefixtures("lenient_umask")
def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    make_engine(f"sqlite:///{shared / 'x.db'}").dispose()
    assert _mode(shared) == 0o750
    assert _mode(shared / "x.db") == 0o600


@pytest.mark.usefixtures("lenient_umask")
def test_a_reset_database_is_owner_only_again(tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    engine = make_engine(f"sqlite:///{database}")
    migrate.upgrade(engine)
    migrate.reset(engine)  # deletes the file
    assert _mode(database) == 0o600
    migrate.upgrade(engine)
    engine.dispose()
    assert _mode(database) == 0o600


@pytest.mark.usefixtures("lenient_umask")
def test_private_text_narrows_a_file_that_others_could_read(tmp_path: Path) -> None:
    path = tmp_path / "data" / "demo-credentials.txt"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    write_private_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert _mode(path) == 0o600


def test_sqlite_file_names_only_a_file_on_disk() -> None:
    assert sqlite_file("sqlite:////srv/data/x.db") == Path("/srv/data/x.db")
    assert sqlite_file("sqlite:///relative/x.db") == Path("relative/x.db")
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql+psycopg://user@host/db") is None

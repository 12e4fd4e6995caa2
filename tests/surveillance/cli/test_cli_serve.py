"""``surveillance serve`` run as an operator runs it: the console script, a real port.

One process on SQLite (pages, API and scheduler together); ``--workers N`` on PostgreSQL
(N uvicorn worker processes under one supervisor, which keeps the one scheduler); and
``--workers`` on SQLite refused with a message, not a traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from pg_cluster import PostgresCluster
from support.peers import free_port

SCRIPT = Path(sys.executable).parent / "surveillance"


def _environment(tmp_path: Path, database_url: str) -> dict[str, str]:
    return os.environ | {
        "HOME": str(tmp_path / "home"),
        "SURVEILLANCE_DATA_DIR": str(tmp_path / "data"),
        "SURVEILLANCE_DATABASE_URL": database_url,
    }


@contextmanager
def _serving(
    env: dict[str, str], output: Path, *args: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``surveillance serve`` on a free port until the block ends (then Ctrl+C); what it
    prints goes to ``output``."""
    port = free_port()
    with output.open("wb") as printed:
        process = subprocess.Popen(
            [str(SCRIPT), "serve", "--port", str(port), *args],
            env=env,
            stdout=printed,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"serve exited: {output.read_text()}"
            assert time.monotonic() < deadline, "serve did not answer /healthz in 90 s"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield process, base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _worker_processes(parent: int) -> list[int]:
    """The uvicorn workers ``parent`` started (multiprocessing spawns them with
    ``--multiprocessing-fork``; its resource tracker is not one)."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile
            continue
        ppid = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
        if int(ppid) == parent and "spawn_main" in command and "resource_tracker" not in command:
            workers.append(int(entry.name))
    return workers


def test_one_process_on_sqlite_serves_pages_and_api_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    env = _environment(tmp_path, f"sqlite:///{tmp_path / 'data' / 'surveillance.db'}")
    printed = tmp_path / "serve.out"
    with _serving(env, printed) as (process, base):
        assert httpx.get(f"{base}/login", timeout=10).status_code == 200
        # The API answers (and refuses an anonymous caller the way it documents).
        refused = httpx.get(f"{base}/api/v1/sites", timeout=10)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert _worker_processes(process.pid) == []
    assert process.returncode == 0
    output = printed.read_text()
    assert "serving on http://127.0.0.1:" in output
    assert "worker processes" not in output


def test_several_workers_on_sqlite_are_refused_with_a_message(tmp_path: Path) -> None:
    env = _environment(tmp_path, f"sqlite:///{tmp_path / 'data' / 'surveillance.db'}")
    done = subprocess.run(
        [str(SCRIPT), "serve", "--workers", "2", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "several worker processes need PostgreSQL" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.postgres
def test_two_worker_processes_on_postgresql_share_the_database(
    tmp_path: Path, pg: PostgresCluster
) -> None:
    url = pg.create_database(f"serve_{uuid.uuid4().hex[:12]}")
    env = _environment(tmp_path, url)
    printed = tmp_path / "serve.out"
    with _serving(env, printed, "--workers", "2", "--no-scheduler") as (process, base):
        deadline = time.monotonic() + 60
        while len(_worker_processes(process.pid)) < 2:
            assert time.monotonic() < deadline, "two worker processes did not start"
            time.sleep(0.2)
        # Many fresh connections: the supervisor's one socket hands them to both workers,
        # each with its own runtime on the same database.
        for _ in range(20):
            assert httpx.get(f"{base}/login", timeout=10).status_code == 200
        assert len(_worker_processes(process.pid)) == 2
    assert process.returncode == 0
    output = printed.read_text()
    assert "2 worker processes" in output

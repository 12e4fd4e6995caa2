"""Shared helpers for the benchmark scripts (not a benchmark itself).

Synthetic patients (seeded), the two sites, small statistics helpers, the JSON last
line, and PostgreSQL plumbing: a server URL from ``--database-url`` or a throwaway
cluster started with ``tests/pg_cluster.py``, plus fresh databases created beside it.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from dateutil.relativedelta import relativedelta
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent

# A fixed "now" for every benchmark: infusions are drawn before it.
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
FIRST_INFUSION = date(2018, 1, 1)
LAST_INFUSION = date(2026, 1, 1)

SITES = (
    ("Rome", "Rome (benchmark)", "Europe/Rome"),
    ("Erlangen", "Erlangen (benchmark)", "Europe/Berlin"),
)

CAR_T = "cd19-car-t-pediatric-autoimmune"
AAV = "aav-liver-5-year"


@dataclass(frozen=True)
class Cohort:
    """Who a protocol is given to: ages at infusion (inclusive) and diagnoses."""

    ages: tuple[int, int]
    diagnoses: tuple[str, ...]


COHORTS = {
    CAR_T: Cohort((5, 17), ("sle", "ssc", "jdm")),
    AAV: Cohort((18, 65), ("hemophilia_a", "hemophilia_b", "other_liver_directed")),
}


@dataclass(frozen=True)
class SyntheticPatient:
    study_id: str
    site_id: str
    birth_date: date
    sex: str
    diagnosis: str
    protocol_id: str
    infusion_date: date


def random_patient(rng: random.Random, number: int, protocol_id: str) -> SyntheticPatient:
    """A patient infused on a random day of 2018-2025, of a random age for the protocol."""
    cohort = COHORTS[protocol_id]
    span = (LAST_INFUSION - FIRST_INFUSION).days
    infused = FIRST_INFUSION + timedelta(days=rng.randrange(span))
    age = rng.randint(*cohort.ages)
    birth = infused - relativedelta(years=age, days=rng.randrange(365))
    return SyntheticPatient(
        study_id=f"P{number:07d}",
        site_id=SITES[number % len(SITES)][0],
        birth_date=birth,
        sex=rng.choice(("F", "M")),
        diagnosis=rng.choice(cohort.diagnoses),
        protocol_id=protocol_id,
        infusion_date=infused,
    )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank on the sorted values."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """Median, p95, min and max of timings given in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "median_ms": round(statistics.median(ms), 4),
        "p95_ms": round(percentile(ms, 95), 4),
        "min_ms": round(min(ms), 4),
        "max_ms": round(max(ms), 4),
    }


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def emit(figures: dict[str, Any]) -> None:
    """The figures as one JSON object on the last line of output."""
    sys.stdout.flush()
    # The machine may be shared: the load average says how busy it was meanwhile.
    figures["loadavg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(figures, default=str), flush=True)


class Stopwatch:
    """Accumulates wall time and this process's CPU time over several ``with`` blocks.

    CPU time is what the work cost this process whatever else the machine was doing
    (it excludes waiting for the CPU, for I/O and, on PostgreSQL, the server's work).
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    @contextmanager
    def running(self) -> Iterator[None]:
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - cpu_start


# -- PostgreSQL ---------------------------------------------------------------------------


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and make_url(str(url)).get_backend_name() == "postgresql"


def libpq_url(url: str) -> str:
    """SQLAlchemy URL (``postgresql+psycopg://``) -> a URL psycopg.connect accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_server(url: str | None) -> Iterator[str]:
    """A PostgreSQL server to create fresh databases on: ``url``, or a throwaway cluster."""
    if url is not None:
        yield url
        return
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from pg_cluster import postgres_cluster  # type: ignore[import-not-found,unused-ignore]

    print("starting a throwaway PostgreSQL cluster (tests/pg_cluster.py)...", flush=True)
    with postgres_cluster() as cluster:
        yield cluster.url


def create_database(server_url: str, name: str) -> str:
    """Create a fresh database ``name`` on the server of ``server_url`` (dropping any old one)."""
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# -- an already-loaded database -----------------------------------------------------------


def busiest_site(url: str) -> str:
    """The site with the most patients (the first by name among equals): on a database
    this script did not load, the site whose lists are longest."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            site = connection.exec_driver_sql(
                "SELECT site_id FROM patients GROUP BY site_id "
                "ORDER BY count(*) DESC, site_id LIMIT 1"
            ).scalar()
    finally:
        engine.dispose()
    if site is None:
        raise SystemExit(f"no patients in {make_url(url).render_as_string()}: load it first")
    return str(site)


# -- memory of other processes ------------------------------------------------------------


def peak_rss_mib(pid: int) -> float | None:
    """A running process's peak resident set (``VmHWM`` in /proc), in MiB; None if gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def descendants(pid: int) -> list[int]:
    """The process's children, their children and so on: from /proc/<pid>/task/*/children
    where the kernel has it, else from every process's parent in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    listed = list(Path(f"/proc/{pid}/task").glob("*/children"))
    if listed:
        for path in listed:
            try:
                children.setdefault(pid, []).extend(int(p) for p in path.read_text().split())
            except OSError:
                continue
        found: list[int] = []
        for child in children.get(pid, []):
            found += [child, *descendants(child)]
        return found
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (command) state ppid ...": the command may hold spaces and parentheses.
            after = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(after[1]), []).append(int(stat.parent.name))
    found = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _cpu_ticks(pid: int, *, with_reaped_children: bool) -> int:
    """utime + stime of a process (and of its exited, waited-for children), in clock ticks."""
    after = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command: state ppid ... utime(12th) stime cutime cstime.
    ticks = int(after[11]) + int(after[12])
    return ticks + int(after[13]) + int(after[14]) if with_reaped_children else ticks


def tree_cpu_s(pid: int, attempts: int = 5) -> float | None:
    """CPU seconds used so far by a process and every descendant, running or exited (a
    server's backends that ended are in its reaped-children time); None if unreadable.
    Read again if a child was reaped while its siblings were read (its time would be
    missing from this reading and found in the next)."""
    try:
        for _ in range(attempts):
            before = _cpu_ticks(pid, with_reaped_children=True)
            children = 0
            for child in descendants(pid):
                try:
                    children += _cpu_ticks(child, with_reaped_children=True)
                except OSError:
                    continue  # ended meanwhile: the parent's reaped time changes, read again
            if _cpu_ticks(pid, with_reaped_children=True) == before:
                break
        return (before + children) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def process_tree_peak_rss(pid: int) -> dict[str, Any]:
    """Peak RSS of a process and of each of its descendants, read while they still run
    (read it just before stopping them: VmHWM is gone with the process)."""
    peaks = {p: peak_rss_mib(p) for p in [pid, *descendants(pid)]}
    processes = [
        {"pid": p, "peak_rss_mib": peak, "command": command_line(p)[:160]}
        for p, peak in peaks.items()
    ]
    known = [peak for peak in peaks.values() if peak is not None]
    return {
        "processes": processes,
        "max_peak_rss_mib": max(known) if known else None,
        "sum_peak_rss_mib": round(sum(known), 1),
    }

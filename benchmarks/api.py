"""The HTTP API under concurrent load: the site due list beside a trivial endpoint.

    .venv/bin/python benchmarks/api.py [--patients 100000] [--connections 50] [--duration 10]
        [--postgres | --database-url postgresql+psycopg://...] [--no-sqlite]
        [--sqlite-file PATH] [--keep] [--postgres-loaded URL] [--workers 1,2,4]

The database
    Built with the bulk loader of ``benchmarks/due_list.py`` (real calendars from the
    engine, history already recorded, a small set left overdue; see its docstring), plus
    one nurse working at the largest site and her bearer token. ``--sqlite-file`` reuses
    (or keeps, if it does not exist yet) a loaded SQLite file between runs;
    ``--postgres-loaded`` uses a loaded PostgreSQL database (this script's ``--keep``,
    ``due_list.py --keep`` or ``registry_load.py``). On a database it did not load, the
    list is the busiest site's (most patients); the nurse and a token are added if missing.

The server
    The real application, ``surveillance.http.app.create_app``, under uvicorn: one process
    (or ``--workers 1,2,4``: one server per count, that many worker processes under
    uvicorn's supervisor, as ``surveillance serve --workers N`` runs it), 127.0.0.1, a free
    port, started as a subprocess of this script (``--serve``). Its
    clock is stopped at the benchmark's date (``--on``), so "today" matches the data.
    The access log is off (it is the same cost for both endpoints, and not what is
    measured); everything else is as ``surveillance serve`` runs it.
    Memory: just before each server is stopped, the peak resident set (``VmHWM``) of the
    process started and of each process under it (uvicorn's supervisor and its workers),
    in ``server_memory``.

The load
    ``wrk`` (``apt-get install wrk``): one thread, ``--connections`` keep-alive
    connections, ``--duration`` seconds per endpoint after a ``--warmup``. Without wrk a
    small asyncio load generator (raw HTTP/1.1 on keep-alive sockets) does the same,
    slower. Endpoints:
    * trivial: ``GET /healthz`` (async, no database, no authentication): the ceiling;
    * due_list: ``GET /api/v1/sites/{site}/due`` with the nurse's bearer token and the
      default page (50 rows; the overdue rows first, then due, then upcoming), i.e.
      token lookup, site, up to three index-ordered queries and JSON, as a nurse's
      browser or a client asks for it.
    Reported per endpoint: requests/s, median, p95 and p99 latency (as wrk measures
    them), errors and non-2xx answers. Targets: due-list throughput within 3x of the
    trivial endpoint (``due_vs_trivial`` >= 0.33) and due-list p95 < 100 ms.

How the due list is served (what this measures; see ``AppState.run_read``)
    The caller's token is resolved once and remembered ``SURVEILLANCE_CACHE_SECONDS``;
    on SQLite the page is read on the event loop (no worker thread: sqlite3 releases the
    GIL at every row, and from a thread each release invites a convoy); on PostgreSQL in
    one of ``SURVEILLANCE_DB_THREADS`` worker threads with as many pooled connections.
    The machine's load average is in the JSON: other processes on a 2-CPU machine take
    CPU from the server, the load generator and PostgreSQL alike.

Prints readable lines, then the figures as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from _common import (
    NOW,
    SITES,
    busiest_site,
    create_database,
    drop_database,
    emit,
    is_postgres_url,
    postgres_server,
    process_tree_peak_rss,
)
from due_list import LoadOptions, load_postgres, load_sqlite

from surveillance.accounts import auth
from surveillance.config import get_settings
from surveillance.errors import NotFound
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, write_session

NURSE = "nurse@bench.example"
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n{"requests": %d, "duration_us": %d, "errors": %d, "non_2xx": %d, '
    .. '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


# -- the database --------------------------------------------------------------------------


def load_options(args: argparse.Namespace) -> LoadOptions:
    return LoadOptions(
        patients=args.patients,
        sites=[site for site, _, _ in SITES],
        distinct=min(5000, args.patients),
        seed=args.seed,
        on=args.on,
        recent_days=120,
        left_pending=0.002,
        missed_share=0.04,
    )


def add_nurse(url: str, site: str) -> str:
    """A nurse at ``site`` and her bearer token; a reused database is migrated first."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        with write_session(engine) as session:
            try:
                auth.get_user(session, NURSE)
            except NotFound:
                auth.add_user(session, email=NURSE, role="nurse", sites=[site], actor="benchmark")
            _, token = auth.create_token(session, email=NURSE, actor="benchmark", now=NOW)
        return token
    finally:
        engine.dispose()


# -- the server ----------------------------------------------------------------------------


def bench_app() -> Any:
    """The app on ``BENCH_API_URL`` with its clock stopped at ``BENCH_API_ON``: the factory
    each uvicorn worker process calls (``surveillance serve --workers N`` does the same with
    ``surveillance.http.app:app_from_environment`` and the real clock)."""
    from surveillance.config import Settings
    from surveillance.http.app import create_app, freeze_startup_objects
    from surveillance.kit.clock import fixed_clock
    from surveillance.main import build_runtime

    on = date.fromisoformat(os.environ["BENCH_API_ON"])
    settings = Settings(database_url=os.environ["BENCH_API_URL"])
    app = create_app(build_runtime(settings, clock=fixed_clock(on)))
    freeze_startup_objects()  # as `surveillance serve` does
    return app


def serve(url: str, port: int, on: date, workers: int) -> None:
    """Run the app from this process (the ``--serve`` mode of this script): in it, or in
    ``workers`` processes under uvicorn's supervisor."""
    import uvicorn

    from surveillance.http.serving import serve_processes

    os.environ["BENCH_API_URL"], os.environ["BENCH_API_ON"] = url, on.isoformat()
    if workers > 1:  # as ``surveillance serve --workers N`` serves
        serve_processes("api:bench_app", workers=workers, host="127.0.0.1", port=port,
                        log_level="warning", access_log=False)  # fmt: skip
        return
    uvicorn.run("api:bench_app", factory=True, host="127.0.0.1", port=port,
                log_level="warning", access_log=False)  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """The app under uvicorn in a subprocess, stopped (by its pid) on exit."""

    def __init__(self, url: str, on: date, workers: int = 1) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            __file__,
            "--serve",
            url,
            "--port",
            str(self.port),
            "--on",
            on.isoformat(),
            "--serve-workers",
            str(workers),
        ]
        self.process = subprocess.Popen(command, cwd=Path(__file__).parent)
        self.memory: dict[str, Any] = {}

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the server did not answer /healthz within 60 s")

    def __exit__(self, *exc: object) -> None:
        # Read before stopping: a process's peak RSS goes with it.
        self.memory = server_memory(self.process.pid)
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def server_memory(pid: int) -> dict[str, Any]:
    """Peak RSS of the server process and of the processes under it (uvicorn's workers;
    with one worker it serves in the process itself)."""
    tree = process_tree_peak_rss(pid)
    main, *others = tree["processes"]
    workers = [p for p in others if "spawn_main" in p["command"]]  # not the resource tracker
    serving = workers or [main]
    return {
        "supervisor_peak_rss_mib": main["peak_rss_mib"],
        "serving_peak_rss_mib": [p["peak_rss_mib"] for p in serving],
        "max_peak_rss_mib": tree["max_peak_rss_mib"],
        "sum_peak_rss_mib": tree["sum_peak_rss_mib"],
        "processes": tree["processes"],
    }


# -- the load ------------------------------------------------------------------------------


def run_wrk(url: str, headers: dict[str, str], connections: int, seconds: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_REPORT)
    try:
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
        ]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    raw = json.loads(output.strip().splitlines()[-1])
    seconds_run = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / seconds_run, 1),
        "median_ms": round(raw["p50_us"] / 1000, 2),
        "p95_ms": round(raw["p95_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "errors": raw["errors"],
        "non_2xx": raw["non_2xx"],
    }


async def _client(
    host: str, port: int, request: bytes, until: float, latencies: list[float]
) -> int:
    """One keep-alive connection sending ``request`` until ``until``; returns non-2xx count."""
    reader, writer = await asyncio.open_connection(host, port)
    bad = 0
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            bad += not status_line.split(b" ")[1].startswith(b"2")
    finally:
        writer.close()
    return bad


def run_asyncio(
    url: str, headers: dict[str, str], connections: int, seconds: float
) -> dict[str, Any]:
    """The fallback load generator (no wrk): itself CPU-bound, so figures are lower bounds."""
    parsed = httpx.URL(url)
    lines = [f"GET {parsed.raw_path.decode()} HTTP/1.1", f"Host: {parsed.host}:{parsed.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []

    async def load() -> int:
        until = time.perf_counter() + seconds
        clients = [
            _client(parsed.host, parsed.port or 80, request, until, latencies)
            for _ in range(connections)
        ]
        return sum(await asyncio.gather(*clients))

    started = time.perf_counter()
    bad = asyncio.run(load())
    elapsed = time.perf_counter() - started
    ms = sorted(value * 1000 for value in latencies)
    return {
        "requests": len(ms),
        "requests_per_s": round(len(ms) / elapsed, 1),
        "median_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[int(len(ms) * 0.95)], 2),
        "p99_ms": round(ms[int(len(ms) * 0.99)], 2),
        "max_ms": round(ms[-1], 2),
        "errors": 0,
        "non_2xx": bad,
    }


def measure(url: str, headers: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    load = run_wrk if shutil.which("wrk") else run_asyncio
    load(url, headers, args.connections, args.warmup)
    return load(url, headers, args.connections, args.duration)


def bench(label: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Both endpoints on one server per worker count of ``--workers`` (the first count's
    figures at the top level, every count's under ``by_workers``), for the busiest site."""
    site = busiest_site(url)
    token = add_nurse(url, site)
    runs = {
        n: bench_workers(f"{label}, {n} worker(s)", url, token, args, n, site) for n in args.workers
    }
    figures = {"site": site, **runs[args.workers[0]]}
    if len(runs) > 1:
        figures["by_workers"] = {str(n): run for n, run in runs.items()}
    return figures


def bench_workers(
    label: str, url: str, token: str, args: argparse.Namespace, workers: int, site: str
) -> dict[str, Any]:
    with Server(url, args.on, workers) as server:
        due_url = f"{server.base}/api/v1/sites/{site}/due"
        auth_header = {"Authorization": f"Bearer {token}"}
        page = httpx.get(due_url, headers=auth_header, timeout=30)
        page.raise_for_status()
        figures: dict[str, Any] = {"due_list_page_rows": len(page.json()["items"])}
        figures["trivial"] = measure(f"{server.base}/healthz", {}, args)
        figures["due_list"] = measure(due_url, auth_header, args)
    figures["server_memory"] = server.memory
    trivial, due = figures["trivial"], figures["due_list"]
    figures["due_vs_trivial"] = round(due["requests_per_s"] / trivial["requests_per_s"], 3)
    figures["targets_met"] = figures["due_vs_trivial"] >= 1 / 3 and due["p95_ms"] < 100
    for name in ("trivial", "due_list"):
        f = figures[name]
        print(
            f"[{label}] {name:>8}: {f['requests_per_s']:>8.1f} req/s"
            f"  median {f['median_ms']:>7.2f} ms  p95 {f['p95_ms']:>7.2f} ms"
            f"  p99 {f['p99_ms']:>7.2f} ms  non-2xx {f['non_2xx']}",
            flush=True,
        )
    print(f"[{label}] due list / trivial throughput: {figures['due_vs_trivial']}", flush=True)
    memory = server.memory
    print(
        f"[{label}] peak RSS: supervisor {memory['supervisor_peak_rss_mib']} MiB, serving "
        f"process(es) {memory['serving_peak_rss_mib']} MiB",
        flush=True,
    )
    return figures


# -- the runs ------------------------------------------------------------------------------


def run_sqlite(args: argparse.Namespace) -> dict[str, Any]:
    keep = args.sqlite_file is not None
    path = args.sqlite_file or Path(tempfile.mkdtemp(prefix="bench-api-")) / "api.db"
    figures: dict[str, Any] = {}
    try:
        if not path.exists():
            print(f"[sqlite] loading {args.patients} patients into {path}", flush=True)
            figures.update(load_sqlite(path, load_options(args)))
        else:
            print(f"[sqlite] reusing {path}", flush=True)
        url = f"sqlite:///{path}"
        figures["database_mb"] = round(path.stat().st_size / 1e6, 1)
        figures.update(bench("sqlite", url, args))
        return figures
    finally:
        if not keep:
            shutil.rmtree(path.parent, ignore_errors=True)


def run_postgres(args: argparse.Namespace) -> dict[str, Any]:
    if args.postgres_loaded:
        print("[postgresql] reusing the loaded database", flush=True)
        url = args.postgres_loaded
        return bench("postgresql", url, args)
    server_url = args.database_url if is_postgres_url(args.database_url) else None
    with postgres_server(server_url) as server:
        name = f"bench_api_{os.getpid()}"
        url = create_database(server, name)
        try:
            print(f"[postgresql] loading {args.patients} patients into database {name}", flush=True)
            figures = load_postgres(url, load_options(args))
            figures.update(bench("postgresql", url, args))
            return figures
        finally:
            if not args.keep:
                drop_database(server, name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument("--warmup", type=int, default=3, help="untimed seconds before each")
    parser.add_argument(
        "--on", type=date.fromisoformat, default=NOW.date(), help="'today' of the server"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database-url", default=get_settings().database_url)
    parser.add_argument(
        "--postgres", action="store_true", help="run on a throwaway PostgreSQL cluster"
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--sqlite-file", type=Path, default=None, help="reuse or keep this SQLite file"
    )
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument(
        "--postgres-loaded",
        metavar="URL",
        help="a loaded database to use as it is (--keep, due_list.py --keep, registry_load.py)",
    )
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1],
        help="server processes, e.g. 1,2,4: one measurement each (PostgreSQL)",
    )
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--serve-workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.on, args.serve_workers)
        return
    figures: dict[str, Any] = {
        "benchmark": "api",
        "patients": args.patients,
        "connections": args.connections,
        "duration_s": args.duration,
        "load_generator": "wrk" if shutil.which("wrk") else "asyncio",
        "cpus": os.cpu_count(),
    }
    if not args.no_sqlite:
        figures["sqlite"] = run_sqlite(args)
    if args.postgres or args.postgres_loaded or is_postgres_url(args.database_url):
        figures["postgresql"] = run_postgres(args)
    emit(figures)


if __name__ == "__main__":
    main()

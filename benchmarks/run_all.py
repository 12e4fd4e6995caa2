"""Every benchmark of issue 15 once, in sequence, on one loaded database per store.

    .venv/bin/python benchmarks/run_all.py --sqlite-file F --postgres-loaded URL
        [--label 1e5] [--quick] [--only due_list_sqlite,api_postgresql ...]

The databases are loaded beforehand (``benchmarks/registry_load.py``, or
``benchmarks/due_list.py --patients N --sites 50 --keep``) and used as they are by the
scripts that read a cohort (due list, API, alerts). The others build what they measure:
``engine.py`` needs no database; ``materialize.py`` (enrolment against raw inserts) and
``adverse_events.py`` (the feed, recording cases) create fresh databases, the
PostgreSQL ones on the server of ``--postgres-loaded`` (dropped at the end). A store not
given: its rows say "not run".

Each step is a subprocess (``python benchmarks/<script>.py ...``, with this checkout
first on ``PYTHONPATH``, so the code measured is this checkout's), run one after the
other. Kept per step: the command, its exit code, wall time, its peak RSS (``wait4``:
the script's process, or a child it waited for if larger: e.g. the SQLite due list), the
load average before and after, and the 1-minute load average sampled every 5 s while it
ran (mean and max); its last-line JSON; its whole output in ``results/<label>/<step>.log``.
The figures of the API server's processes and of the alert worker (their peak RSS,
``VmHWM``) are in those scripts' JSON.

Writes ``benchmarks/results/<label>.json`` and prints the table of ``RESULTS.md``
(path | store | figure | ratio to raw | target | met?). ``--quick`` shortens every step
(for trying the orchestrator, not for figures). ``--table results/<label>.json``
prints the table of a run again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import CAR_T, ROOT
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
NOT_RUN = "not run"


@dataclass(frozen=True)
class Step:
    name: str
    store: str | None  # "sqlite", "postgresql", or None (no loaded database needed)
    script: str
    args: list[str]


def steps(args: argparse.Namespace) -> list[Step]:
    """One step per row (and store) of the table, with arguments that measure its target."""
    quick = args.quick
    sqlite = str(args.sqlite_file) if args.sqlite_file else ""
    loaded = args.postgres_loaded or ""
    server = server_url(loaded) if loaded else ""
    # No PostgreSQL run unless asked: a DATABASE_URL in the environment is not passed on.
    no_pg = ["--database-url", "sqlite://"]
    enrol = "500" if quick else str(args.enrol_patients)
    runs = "50" if quick else "200"
    duration = "3" if quick else str(args.api_duration)
    workers = "1,2" if quick else "1,2,4"
    entries, pulls = ("5000", "1") if quick else ("20000", "3")
    cases, cohort = ("10", "60") if quick else ("50", "200")
    engine = ["--patients", "200" if quick else "1000", "--repeat", "1" if quick else "5"]
    return [
        Step("engine", None, "engine.py", [*engine, "--protocol", CAR_T, "--car-t-version", "1.0"]),
        Step("materialize_sqlite", "sqlite", "materialize.py", ["--patients", enrol, *no_pg]),
        Step(
            "materialize_postgresql",
            "postgresql",
            "materialize.py",
            ["--patients", enrol, "--no-sqlite", "--database-url", server],
        ),
        Step(
            "due_list_sqlite",
            "sqlite",
            "due_list.py",
            ["--sqlite-file", sqlite, "--runs", runs, *no_pg],
        ),
        Step(
            "due_list_postgresql",
            "postgresql",
            "due_list.py",
            ["--no-sqlite", "--postgres-loaded", loaded, "--runs", runs],
        ),
        Step(
            "api_sqlite",
            "sqlite",
            "api.py",
            ["--sqlite-file", sqlite, "--connections", "50", "--duration", duration, *no_pg],
        ),
        Step(
            "api_postgresql",
            "postgresql",
            "api.py",
            [
                *("--no-sqlite", "--postgres-loaded", loaded, "--connections", "50"),
                *("--duration", duration, "--workers", workers),
            ],
        ),
        Step(
            "alerts_sqlite", "sqlite", "alerts.py", ["--sqlite-file", sqlite, "--deliveries", "0"]
        ),
        Step(
            "alerts_postgresql",
            "postgresql",
            "alerts.py",
            ["--postgres-loaded", loaded, "--deliveries", "0"],
        ),
        Step("dispatch", None, "alerts.py", ["--deliveries", "200" if quick else "1000"]),
        Step(
            "feed_sqlite",
            "sqlite",
            "adverse_events.py",
            ["--no-record", "--entries", entries, "--runs", pulls, *no_pg],
        ),
        Step(
            "feed_postgresql",
            "postgresql",
            "adverse_events.py",
            [
                *("--no-record", "--no-sqlite", "--database-url", server),
                *("--entries", entries, "--runs", pulls),
            ],
        ),
        Step(
            "record_postgresql",
            "postgresql",
            "adverse_events.py",
            [
                *("--no-feed", "--no-sqlite", "--database-url", server),
                *("--threads", "4", "--processes", "4", "--cases-per-thread", cases),
                *("--runs", "1", "--cohort", cohort),
            ],
        ),
    ]


def server_url(url: str) -> str:
    """The loaded database's server, as a URL to its ``postgres`` database (the scripts
    that need fresh databases create them beside it)."""
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


# -- running ---------------------------------------------------------------------------------


class LoadSampler:
    """The 1-minute load average every ``interval`` seconds, in a daemon thread."""

    def __init__(self, interval: float = 5.0) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), os.getloadavg()[0]))
            self._stop.wait(self._interval)

    def between(self, start: float, end: float) -> dict[str, float | None]:
        values = [load for at, load in self.samples if start <= at <= end]
        return {
            "samples": len(values),
            "mean": round(sum(values) / len(values), 2) if values else None,
            "max": round(max(values), 2) if values else None,
        }

    def stop(self) -> None:
        self._stop.set()


def run_step(step: Step, logs: Path, sampler: LoadSampler) -> dict[str, Any]:
    command = [sys.executable, str(HERE / step.script), *step.args]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.pop("SURVEILLANCE_DATABASE_URL", None)  # each step is told its database
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log_path = logs / f"{step.name}.log"
    print(f"== {step.name}: {' '.join(command[1:])}", flush=True)
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        # wait4: this child's own resource use (ru_maxrss: its peak, or that of a child
        # it waited for if larger), not the running maximum RUSAGE_CHILDREN would give.
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except KeyboardInterrupt:  # stop the step too (its own servers stop with it)
            process.terminate()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    output = log_path.read_text().splitlines()
    figures = last_json(output)
    result: dict[str, Any] = {
        "command": command[1:],
        "exit_code": process.returncode,
        "wall_s": round(seconds, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "load_during_1min": sampler.between(started, time.perf_counter()),
        "log": str(log_path),
        "figures": figures,
    }
    verdict = "ok" if process.returncode == 0 and figures is not None else "FAILED"
    print(
        f"   {verdict} in {seconds:.0f} s, peak RSS {result['peak_rss_mib']} MiB, load "
        f"{load_before[0]} -> {result['load_after'][0]}",
        flush=True,
    )
    if verdict != "ok":
        print("   " + "\n   ".join(output[-15:]), flush=True)
    return result


def last_json(lines: list[str]) -> dict[str, Any] | None:
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                parsed: dict[str, Any] = json.loads(line)
                return parsed
            except json.JSONDecodeError:
                return None
    return None


def store_facts(url: str) -> dict[str, Any]:
    """What the loaded database holds (the size the figures are at)."""
    engine = create_engine(url)
    queries = {
        "patients": "SELECT count(*) FROM patients",
        "sites": "SELECT count(*) FROM sites",
        "assessments": "SELECT count(*) FROM assessments",
        "adverse_event_versions": "SELECT count(*) FROM adverse_event_versions",
    }
    facts: dict[str, Any] = {}
    try:
        with engine.connect() as connection:
            for name, query in queries.items():
                try:
                    facts[name] = connection.exec_driver_sql(query).scalar()
                except Exception as exc:  # a table another schema lacks: say so, go on
                    facts[name] = f"error: {type(exc).__name__}"
                    connection.rollback()
            if engine.dialect.name == "postgresql":
                facts["database_mb"] = round(
                    connection.exec_driver_sql(
                        "SELECT pg_database_size(current_database())"
                    ).scalar_one()
                    / 1e6,
                    1,
                )
    finally:
        engine.dispose()
    return facts


# -- the table -------------------------------------------------------------------------------

Row = tuple[str, str, str, str, str, str]  # path, store, figure, ratio to raw, target, met?
Line = tuple[str, str, str, str, str, str, str]  # a row and the load while its step ran
COLUMNS = ("path", "store", "figure", "ratio to raw", "target", "met?", "load (1 min) mean/max")


def dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def met(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "**no**")


def table(results: dict[str, Any]) -> list[Line]:
    """The rows of RESULTS.md's table, from each step's JSON ("not run" if it did not)."""
    steps_ = results["steps"]
    rows: list[Row] = []
    loads: list[str] = []

    def put(row: Row, name: str) -> None:
        rows.append(row)
        load = dig(steps_, name, "load_during_1min") or {}
        ends = [dig(steps_, name, end) for end in ("load_before", "load_after")]
        if load.get("samples"):
            loads.append(f"{load['mean']} / {load['max']}")
        elif all(ends):  # shorter than a sample's interval: the 1-minute load at its ends
            loads.append(" / ".join(str(x) for x in sorted(end[0] for end in ends)))
        else:
            loads.append("")

    def step(name: str) -> dict[str, Any] | None:
        found = steps_.get(name)
        return found.get("figures") if found else None

    def add(path: str, store: str, name: str, build: Callable[[dict[str, Any]], Row]) -> None:
        figures = step(name)
        if figures is None:
            reason = (steps_[name].get("skipped") or "failed") if name in steps_ else NOT_RUN
            put((path, store, reason, "", "", "—"), name)
            return
        try:
            put(build(figures), name)
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            put((path, store, f"no figure ({exc!r})", "", "", "—"), name)

    def engine(f: dict[str, Any]) -> Row:
        p = f["protocols"][CAR_T]
        return (
            f"engine, CD19 CAR-T {p['version']} calendar ({p['mean_rows_per_calendar']:.0f} rows)",
            "none",
            f"{p['calendars_per_s']:,.0f} calendars/s ({p['calendars_per_cpu_s']:,.0f} per CPU s)",
            f"{p['engine_to_raw']} (CPU {p['engine_to_raw_cpu']})",
            "≥ 0.66 of raw",
            met(p["engine_to_raw"] >= 0.66),
        )

    add("engine", "none", "engine", engine)

    for store in ("sqlite", "postgresql"):

        def materialize(f: dict[str, Any], store: str = store) -> Row:
            s = f[store]
            fastest = max(s["raw"].items(), key=lambda kv: kv[1]["rows_per_s"])
            ratio = fastest[1]["end_to_end_vs_raw"]
            return (
                "enrol end to end (engine + storage)",
                store,
                f"{s['end_to_end_rows_per_s']:,.0f} rows/s, {s['patients']} patients",
                f"{ratio} (vs {fastest[0]})",
                "≥ 0.5",
                met(ratio >= 0.5),
            )

        add("enrol end to end", store, f"materialize_{store}", materialize)

    for store in ("sqlite", "postgresql"):

        def due(f: dict[str, Any], store: str = store) -> Row:
            s = f[store]
            counts = s["counts"]
            return (
                f"due list, one site ({counts['site_patients']:,} of {counts['patients']:,} "
                "patients)",
                store,
                f"p95 {s['app']['p95_ms']} ms, median {s['app']['median_ms']} ms "
                f"(raw p95 {s['raw']['p95_ms']} ms)",
                f"{s['ratio_median']} (p95 {s['ratio_p95']})",
                "p95 < 5 ms",
                met(s["app"]["p95_ms"] < 5),
            )

        add("due list", store, f"due_list_{store}", due)

    for store in ("sqlite", "postgresql"):
        figures = step(f"api_{store}")
        if dig(figures, store) is None:
            reason = steps_.get(f"api_{store}", {}).get("skipped") or NOT_RUN
            put(("API due list, 50 connections", store, reason, "", "", "—"), f"api_{store}")
            continue
        by_workers = dig(figures, store, "by_workers") or {"1": dig(figures, store)}
        for workers, w in by_workers.items():
            ratio, p95 = w["due_vs_trivial"], w["due_list"]["p95_ms"]
            put(
                (
                    f"API due list, 50 connections, {workers} worker process(es)",
                    store,
                    f"{w['due_list']['requests_per_s']:,.0f} req/s, p95 {p95} ms "
                    f"(trivial {w['trivial']['requests_per_s']:,.0f} req/s)",
                    f"{ratio} of trivial",
                    "≥ ⅓ of trivial, p95 < 100 ms",
                    met(ratio >= 1 / 3 and p95 < 100),
                ),
                f"api_{store}",
            )
            memory = w.get("server_memory") or {}
            if memory:
                peak = memory["max_peak_rss_mib"]
                put(
                    (
                        f"memory: API server, {workers} worker process(es)",
                        store,
                        "peak RSS of each serving process "
                        + ", ".join(f"{m} MiB" for m in memory["serving_peak_rss_mib"])
                        + f" (supervisor {memory['supervisor_peak_rss_mib']} MiB)",
                        "",
                        "< 1 GiB each",
                        met(peak < 1024),
                    ),
                    f"api_{store}",
                )

    for store in ("sqlite", "postgresql"):
        patients = dig(results, "stores", store, "patients")
        # The targets: < 2 s at 10^5, < 20 s at 10^6 (in proportion, not below 2 s).
        limit = max(2.0, 2.0 * patients / 100_000) if isinstance(patients, int) else 2.0

        def scan(f: dict[str, Any], store: str = store, limit: float = limit) -> Row:
            s = f[f"scan_{store}"]
            later, first = s["next_day"], s["first_scan"]
            changed = next(v for k, v in s.items() if k.startswith("after_"))
            return (
                "alert scan (incremental: a day later / after writes)",
                store,
                f"{later['seconds']} s a day later ({later['alerts']} alerts); "
                f"{changed['seconds']} s after {changed['changed_patients']} patients changed; "
                f"first (full) {first['seconds']} s ({first['alerts']} alerts)",
                "",
                f"< {limit:g} s",
                met(max(later["seconds"], changed["seconds"]) < limit),
            )

        def worker(f: dict[str, Any], store: str = store, limit: float = limit) -> Row:
            w = f[f"worker_{store}"]
            return (
                "worker process: first scan of the loaded database, then dispatch",
                store,
                f"scan {w['scan_s']} s, safety-net full scan {w['full_scan_s']} s; "
                f"peak RSS {w['peak_rss_mib']} MiB" + (" (timed out)" if w["timed_out"] else ""),
                "",
                f"peak RSS < 1 GiB (scan < {limit:g} s)",
                met(w["peak_rss_mib"] is not None and w["peak_rss_mib"] < 1024),
            )

        add("alert scan", store, f"alerts_{store}", scan)
        add("worker", store, f"alerts_{store}", worker)

    def dispatch(f: dict[str, Any]) -> Row:
        d = f["dispatch"]
        return (
            "webhook dispatch",
            "sqlite (own file)",
            f"{d['app_per_s']:,.0f} deliveries/s (raw httpx {d['raw_httpx_per_s']:,.0f}/s)",
            str(d["ratio"]),
            "≥ 0.5",
            met(d["ratio"] >= 0.5),
        )

    add("webhook dispatch", "sqlite", "dispatch", dispatch)

    for store in ("sqlite", "postgresql"):

        def feed(f: dict[str, Any], store: str = store) -> Row:
            s = f[store]["feed"]
            parts, worst = [], float("inf")
            ratios = []
            for key in sorted(k for k in s if k.startswith("limit_")):
                for fmt in ("http_json", "http_fhir"):
                    rate = s[key][fmt]["entries_per_s"]
                    worst = min(worst, rate)
                    name = fmt.removeprefix("http_").upper()
                    parts.append(f"{name} {key.removeprefix('limit_')}/page {rate:,.0f}/s")
                    ratios.append(f"{s[key][fmt]['vs_raw']}")
            return (
                f"PV feed over HTTP ({s['entries']:,} entries)",
                store,
                "; ".join(parts),
                " / ".join(ratios),
                "≥ 10 k entries/s in both formats",
                met(worst >= 10_000),
            )

        add("PV feed", store, f"feed_{store}", feed)

    def record(f: dict[str, Any]) -> Row:
        s = f["postgresql"]["record"]
        threads = next(k for k in s if k.startswith("threads_") and k != "threads_1")
        processes = next((k for k in s if k.startswith("scaling_") and "processes" in k), None)
        scaled = s[processes] if processes else None
        check = s.get("feed_check", {})
        return (
            "recording cases, 4 writers",
            "postgresql",
            f"1 writer {s['threads_1']['cases_per_s']} cases/s; {threads}: "
            f"{s[threads]['cases_per_s']} ({s['scaling_k_vs_1']}x); 4 processes: {scaled}x; "
            f"feed gapless: {check.get('contiguous_1_to_n')}",
            "",
            "≥ 3× with 4 writers, feed gapless",
            met(max(s["scaling_k_vs_1"], scaled or 0) >= 3 and bool(check.get("ok"))),
        )

    add("recording cases", "postgresql", "record_postgresql", record)
    for store in ("sqlite", "postgresql"):
        marks = [row[5] for row in rows if row[1].startswith(store)]
        verdicts = [mark for mark in marks if mark != "—"]  # rows not run have none
        if verdicts:
            yes = sum(v == "yes" for v in verdicts)
            unrun = len(marks) - len(verdicts)
            put(
                (
                    f"every figure above, {describe({store: results['stores'].get(store, {})})}",
                    store,
                    f"{yes} of {len(verdicts)} rows met"
                    + (f" ({unrun} without a figure)" if unrun else ""),
                    "",
                    "every target holds",
                    met(yes == len(verdicts) and not unrun),
                ),
                "",
            )
    return [(*row, load) for row, load in zip(rows, loads, strict=True)]


def markdown(rows: list[Line]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sqlite-file", type=Path, help="a loaded SQLite database")
    parser.add_argument("--postgres-loaded", metavar="URL", help="a loaded PostgreSQL database")
    parser.add_argument("--label", default="run", help="names results/<label>.json")
    parser.add_argument("--api-duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument(
        "--enrol-patients",
        type=int,
        default=3000,
        help="patients materialize.py enrols into fresh databases (10 000: ~10 min a store)",
    )
    parser.add_argument("--quick", action="store_true", help="short steps: to try it out")
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        default=None,
        help="run only these steps (comma-separated names)",
    )
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument(
        "--table", type=Path, metavar="JSON", help="print the table of a run's results; run nothing"
    )
    args = parser.parse_args()
    if args.table:
        print(markdown(table(json.loads(args.table.read_text()))))
        return
    if args.sqlite_file is not None and not args.sqlite_file.exists():
        parser.error(f"no database at {args.sqlite_file}: load it first")
    if not (args.sqlite_file or args.postgres_loaded):
        print("neither --sqlite-file nor --postgres-loaded: only the steps with no store run")

    stores: dict[str, Any] = {}
    if args.sqlite_file:
        stores["sqlite"] = {
            "file": str(args.sqlite_file.resolve()),
            **store_facts(f"sqlite:///{args.sqlite_file}"),
        }
    if args.postgres_loaded:
        stores["postgresql"] = {
            "url": make_url(args.postgres_loaded).render_as_string(hide_password=True),
            **store_facts(args.postgres_loaded),
        }
    logs = args.results / args.label
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "label": args.label,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "quick": args.quick,
        "stores": stores,
        "steps": {},
    }
    out = args.results / f"{args.label}.json"
    sampler = LoadSampler()
    started = time.perf_counter()
    try:
        for step in steps(args):
            if args.only and step.name not in args.only:
                continue
            if step.store is not None and step.store not in stores:
                results["steps"][step.name] = {"skipped": f"{NOT_RUN} (no {step.store} database)"}
                print(f"== {step.name}: {NOT_RUN} (no {step.store} database)", flush=True)
                continue
            results["steps"][step.name] = run_step(step, logs, sampler)
            out.write_text(json.dumps(results, indent=1, default=str))  # progress kept
    finally:
        sampler.stop()
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results["load_during_run_1min"] = sampler.between(started, time.perf_counter())
    results["self_peak_rss_mib"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    rows = table(results)
    results["table"] = [dict(zip(COLUMNS, r, strict=True)) for r in rows]
    out.write_text(json.dumps(results, indent=1, default=str))
    print()
    print(
        f"{args.label}: {describe(stores)}; {results['wall_s']:.0f} s; load (1 min) during the "
        f"run mean {results['load_during_run_1min']['mean']}, max "
        f"{results['load_during_run_1min']['max']} on {os.cpu_count()} CPUs"
    )
    print(markdown(rows))
    print(f"\nwritten {out} (logs in {logs})")


def describe(stores: dict[str, Any]) -> str:
    parts = [
        f"{store} {facts.get('patients')} patients, {facts.get('sites')} sites, "
        f"{facts.get('assessments')} assessments"
        for store, facts in stores.items()
    ]
    return "; ".join(parts) or "no loaded database"


def git(*command: str) -> str:
    done = subprocess.run(
        ["/usr/bin/env", "git", "-C", str(ROOT), *command],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


if __name__ == "__main__":
    main()

"""Long-running processes: ``surveillance serve`` (pages, API, scheduler) and ``worker``.

Both run on the process's one runtime: ``serve``'s app and scheduler share its engine.
With ``--workers N`` the app runs in N processes (uvicorn's supervisor), each with its own
runtime and connection pool (``SURVEILLANCE_DB_THREADS`` connections each); the scheduler
stays one, in the supervising process, so the scan and the dispatch run once.

Their log lines reach stderr through the process's entry points (``cli.main``, and
``http.app.app_from_environment`` in each worker process), not through these commands: a
command invoked in-process (a test) leaves the process's logging as it found it.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from surveillance.alerting.scheduler import build_scheduler
from surveillance.cli.context import TodayOption, migrated_runtime
from surveillance.kit.db import is_sqlite
from surveillance.main import alert_jobs

commands = typer.Typer()


@commands.command("serve")
def serve_command(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    scheduler: Annotated[
        bool, typer.Option(help="Also run the alert scheduler (--no-scheduler: API only).")
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Processes serving requests (PostgreSQL; each has its own connection pool).",
        ),
    ] = 1,
) -> None:
    """Run the web pages and the HTTP API (OpenAPI at /docs), with the alert scheduler."""
    # Imported here: the web stack is slow to import and only this command needs it.
    import uvicorn

    from surveillance.http.app import create_app, freeze_startup_objects
    from surveillance.http.serving import serve_processes

    current = migrated_runtime(create=True)  # migrates before serving
    if workers > 1 and is_sqlite(current.engine):
        # One SQLite file takes one writer at a time: more processes only queue on its lock.
        raise typer.BadParameter(
            "several worker processes need PostgreSQL (SURVEILLANCE_DATABASE_URL); "
            "SQLite serves from one process",
            param_hint="--workers",
        )
    background = build_scheduler(alert_jobs(current)) if scheduler else None
    if background is not None:
        background.start()
    typer.echo(
        f"serving on http://{host}:{port}/ (API docs at /docs)"
        f"{'' if scheduler else ', no scheduler'}"
        f"{f', {workers} worker processes' if workers > 1 else ''}"
    )
    try:
        if workers > 1:
            # Each worker builds its app from the environment (the same settings as here).
            serve_processes(
                "surveillance.http.app:app_from_environment",
                workers=workers,
                host=host,
                port=port,
            )
        else:
            app = create_app(current)
            freeze_startup_objects()
            uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        if background is not None:
            background.shutdown(wait=False)


@commands.command("worker")
def worker_command(today: TodayOption = None) -> None:
    """Run only the alert scheduler (scan, digests, dispatch), for multi-process deployments."""
    # --today (hidden): the jobs' clock stopped at noon UTC of that day (benchmarks/alerts.py
    # runs the worker on data loaded as of a fixed day); the scheduler still fires on time.
    scheduler = build_scheduler(alert_jobs(migrated_runtime(today, create=True)))
    scheduler.start()
    typer.echo("alert worker running (Ctrl+C to stop)")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown()
        signal.signal(signal.SIGTERM, previous)  # run in-process (a test): as it was

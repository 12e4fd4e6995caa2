"""Long-running processes: ``surveillance serve`` (pages, API, scheduler) and ``worker``.

Both run on the process's one runtime: ``serve``'s app and scheduler share its engine.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from surveillance.alerting.scheduler import build_scheduler
from surveillance.cli.context import migrated_runtime
from surveillance.main import alert_jobs

commands = typer.Typer()


@commands.command("serve")
def serve_command(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    scheduler: Annotated[
        bool, typer.Option(help="Also run the alert scheduler (--no-scheduler: API only).")
    ] = True,
) -> None:
    """Run the web pages and the HTTP API (OpenAPI at /docs), with the alert scheduler."""
    # Imported here: the web stack is slow to import and only this command needs it.
    import uvicorn

    from surveillance.http.app import create_app

    current = migrated_runtime(create=True)  # migrates before serving
    background = build_scheduler(alert_jobs(current)) if scheduler else None
    if background is not None:
        background.start()
    typer.echo(
        f"serving on http://{host}:{port}/ (API docs at /docs)"
        f"{'' if scheduler else ', no scheduler'}"
    )
    try:
        uvicorn.run(create_app(current), host=host, port=port, log_level="info")
    finally:
        if background is not None:
            background.shutdown(wait=False)


@commands.command("worker")
def worker_command() -> None:
    """Run only the alert scheduler (scan, digests, dispatch), for multi-process deployments."""
    scheduler = build_scheduler(alert_jobs(migrated_runtime(create=True)))
    scheduler.start()
    typer.echo("alert worker running (Ctrl+C to stop)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown()

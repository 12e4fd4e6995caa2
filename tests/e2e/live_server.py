"""A real server for browser tests: uvicorn on a free 127.0.0.1 port in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from surveillance.cli.demo import create_demo_users, load_demo
from surveillance.config import Settings
from surveillance.http.app import create_app
from surveillance.kit import migrate
from surveillance.kit.db import write_session
from surveillance.main import build_runtime

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    passwords: dict[str, str]  # demo email -> password


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def demo_server(database: Path, *, webhook_allow_private: bool = False) -> Iterator[LiveServer]:
    """Load the demo into a fresh SQLite file at ``database`` and serve it until the block ends.

    ``webhook_allow_private``: webhook endpoints on 127.0.0.1 may be registered (a test's
    receiver), as with ``SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE=true``."""
    settings = Settings(
        database_url=f"sqlite:///{database}", webhook_allow_private=webhook_allow_private
    )
    runtime = build_runtime(settings)
    migrate.upgrade(runtime.engine)
    with write_session(runtime.engine) as session:
        load_demo(session, registry=runtime.registry, now=runtime.clock())
        credentials = create_demo_users(session)
    port = _free_port()
    config = uvicorn.Config(
        create_app(runtime),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="none",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-e2e", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", {e: p for e, _, p in credentials})
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.engine.dispose()

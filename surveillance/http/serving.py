"""Several server processes on one port: uvicorn's supervisor, with the socket mended.

``uvicorn.run(..., workers=N)`` binds the listening socket itself (``Config.bind_socket``)
and leaves its protocol number at 0 (Kludex/uvicorn#3149, open). Accepted connections
inherit it, and asyncio turns Nagle's algorithm off (``TCP_NODELAY``) only on sockets that
say ``IPPROTO_TCP``. So with several processes every response on a kept-alive connection
went out in two segments, the second held until the client's delayed ACK: 44 ms a request
with 2 processes against 0.4 ms with one (measured, ``/healthz``, one connection). One
process is not affected: there asyncio makes the socket itself, from ``getaddrinfo``.
"""

from __future__ import annotations

import socket
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess


def listening_socket(config: uvicorn.Config) -> socket.socket:
    """The socket ``config`` binds, wrapped again so it carries its real protocol (the
    kernel's, read back when a socket is made from a file descriptor): accepted
    connections then get ``TCP_NODELAY`` from asyncio."""
    bound = config.bind_socket()
    listening = socket.socket(fileno=bound.detach())
    # Also on the listening socket itself: Linux gives it to every connection accepted.
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listening


def serve_processes(
    app: str,
    *,
    workers: int,
    host: str,
    port: int,
    log_level: str = "info",
    access_log: bool = True,
) -> None:
    """``uvicorn.run(app, factory=True, workers=workers, ...)`` (``app``: the import string
    of an app factory each process calls) on a socket from ``listening_socket``."""
    config = uvicorn.Config(
        app,
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
    )
    supervisor = Multiprocess(config, sockets=[listening_socket(config)])
    supervisor.run()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        sys.exit(STARTUP_FAILURE)  # as uvicorn.run exits when its one server cannot start

"""``serve --workers N``: the socket the processes share gives each connection TCP_NODELAY.

uvicorn binds that socket with protocol 0 (Kludex/uvicorn#3149); asyncio then leaves
Nagle's algorithm on for every accepted connection, and each response on a kept-alive
connection waited ~40 ms for the client's delayed ACK. Checked here on the accepted
socket itself, as asyncio serves it (no timing).
"""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

import uvicorn

from surveillance.http.serving import listening_socket


def _accepted_nodelay(listening: socket.socket) -> int:
    """TCP_NODELAY of the connection an asyncio server accepts on ``listening``."""

    async def run() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Report(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Report, sock=listening)
        async with server:
            host, port = listening.getsockname()[:2]
            _, writer = await asyncio.open_connection(host, port)
            try:
                return await asyncio.wait_for(accepted, timeout=10)
            finally:
                writer.close()

    # In a thread of its own: an earlier test (a browser driver) may have left an event
    # loop running in this one, where asyncio.run() is refused.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(lambda: asyncio.run(run())).result(timeout=30)


def _config() -> uvicorn.Config:
    return uvicorn.Config("surveillance.http.app:app_from_environment", host="127.0.0.1",
                          port=0, workers=2)  # fmt: skip


def test_connections_on_the_shared_socket_have_nagle_off() -> None:
    listening = listening_socket(_config())
    assert listening.proto == socket.IPPROTO_TCP
    assert _accepted_nodelay(listening) != 0


def test_uvicorns_own_socket_still_leaves_nagle_on() -> None:
    """What ``listening_socket`` mends. When this fails, uvicorn has fixed #3149 and
    ``serving.listening_socket`` can go."""
    assert _accepted_nodelay(_config().bind_socket()) == 0

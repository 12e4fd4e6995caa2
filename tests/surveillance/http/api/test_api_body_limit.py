"""Request bodies are limited at the edge: 413 (problem details) before the body is read."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from support.live_api import serving

from surveillance.config import Settings
from surveillance.http.app import create_app
from surveillance.kit import migrate
from surveillance.main import build_runtime

LARGE = 150 * 1024 * 1024  # 150 MB
CHUNK = b"x" * 65536


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('limit')) / 'surveillance.db'}"
    runtime = build_runtime(Settings(database_url=url))
    migrate.upgrade(runtime.engine)
    try:
        with serving(create_app(runtime), name="uvicorn-limit") as served:
            yield served
    finally:
        runtime.engine.dispose()


def _connect(base: str) -> socket.socket:
    parts = urlsplit(base)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def _answer(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def _send_until_answered(sock: socket.socket, chunked: bool) -> tuple[int, float]:
    """Send body pieces until the server answers (or stops reading): bytes sent, seconds."""
    started = time.monotonic()
    sent = 0
    while sent < LARGE and time.monotonic() - started < 10:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break
        piece = (b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n") if chunked else CHUNK
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(CHUNK)
    return sent, time.monotonic() - started


@pytest.mark.parametrize("path", ["/api/v1/patients/ROM-101/adverse-events", "/login"])
def test_a_declared_150_mb_body_is_refused_unread(base: str, path: str) -> None:
    with _connect(base) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {LARGE}\r\n\r\n".encode()
        )
        sent, seconds = _send_until_answered(sock, chunked=False)
        answer = _answer(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in head.lower()
    assert json.loads(body)["status"] == 413
    assert sent < 8 * 1024 * 1024  # refused long before the 150 MB were sent
    assert seconds < 5


def test_a_streamed_150_mb_body_is_refused_once_past_the_limit(base: str) -> None:
    with _connect(base) as sock:
        sock.sendall(
            b"POST /api/v1/patients/ROM-101/adverse-events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sent, seconds = _send_until_answered(sock, chunked=True)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 8 * 1024 * 1024
    assert seconds < 5


def test_requests_under_the_limit_go_through(base: str) -> None:
    small = httpx.post(
        f"{base}/api/v1/patients/ROM-101/adverse-events", json={"term": "x" * 10_000}
    )
    assert small.status_code == 401  # reached the route's sign-in check
    big = httpx.post(
        f"{base}/api/v1/patients/ROM-101/adverse-events", content=b"{" + b" " * (2 * 1024 * 1024)
    )
    assert big.status_code == 413
    assert big.headers["content-type"] == "application/problem+json"

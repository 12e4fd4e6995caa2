"""Real peers on 127.0.0.1 for delivery tests: an SMTP server (aiosmtpd) and an HTTP
webhook receiver. Shared by ``tests/notifications`` and ``tests/surveillance/alerting``.

Import the fixtures into a ``conftest.py`` to use them there::

    from support.peers import receiver, smtp_server  # noqa: F401 (fixtures)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class SmtpInbox:
    """What the SMTP server accepted, and how to make it refuse."""

    host: str
    port: int
    messages: list[tuple[Envelope, Message]] = field(default_factory=list)
    refuse_with: str | None = None  # e.g. "550 mailbox unavailable"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_with:
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append((envelope, message_from_bytes(envelope.content)))
        return "250 Message accepted"


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"nurse-bot",
        b"s3cret-pass",
    )
    # handled=False: let the server answer 535 itself (the default means "already answered").
    return AuthResult(success=ok, handled=False)


@contextmanager
def running_smtp_server(port: int | None = None) -> Iterator[SmtpInbox]:
    """An SMTP server on 127.0.0.1 (on ``port`` if given: e.g. one that was down before)."""
    inbox = SmtpInbox("127.0.0.1", port or free_port())
    controller = Controller(
        inbox,
        hostname=inbox.host,
        port=inbox.port,
        authenticator=_authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpInbox]:
    with running_smtp_server() as inbox:
        yield inbox


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server that records requests and answers from a script of responses."""

    url: str
    requests: list[ReceivedRequest] = field(default_factory=list)
    # (status, headers, delay seconds); the last one repeats.
    script: list[tuple[int, dict[str, str], float]] = field(
        default_factory=lambda: [(200, {}, 0.0)]
    )

    def ids(self) -> list[str]:
        """The ``webhook-id`` of every request, in arrival order (repeats included)."""
        return [r.headers["webhook-id"] for r in list(self.requests)]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timed out, or was killed) leaves a broken pipe: not news.
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    state = Receiver(f"http://127.0.0.1:{port}/hooks")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            with lock:
                state.requests.append(ReceivedRequest(self.path, dict(self.headers.items()), body))
                status, headers, delay = (
                    state.script.pop(0) if len(state.script) > 1 else state.script[0]
                )
            time.sleep(delay)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _QuietServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()

"""Real peers on 127.0.0.1: an SMTP server (aiosmtpd) and an HTTP webhook receiver.

They live in ``tests/support/peers.py`` (shared with the alerting tests); the names are
re-exported here as this folder's fixtures.
"""

from __future__ import annotations

from support.peers import (
    ReceivedRequest,
    Receiver,
    SmtpInbox,
    free_port,
    receiver,
    smtp_server,
)

__all__ = ["ReceivedRequest", "Receiver", "SmtpInbox", "free_port", "receiver", "smtp_server"]

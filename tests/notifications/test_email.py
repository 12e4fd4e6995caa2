from dataclasses import replace
from urllib.parse import unquote

import pytest
from support.peers import SmtpInbox, free_port

from notifications import (
    EmailMessage,
    PermanentDeliveryError,
    SmtpConfig,
    TransientDeliveryError,
    send_email,
)

MESSAGE = EmailMessage(
    to=("nurse.rome@example.org",),
    subject="Overdue: ROM-001 RCL test (month 6)",
    text="ROM-001: RCL test, month 6, was due 2024-07-31 (window 2024-07-01 to 2024-08-30).",
    html="<p><strong>ROM-001</strong>: RCL test, month 6</p>",
    message_id="alert-7f3a",
)


def config(server: SmtpInbox, **overrides: object) -> SmtpConfig:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "starttls": False,
        "from_address": "ltfu@example.org",
    }
    values.update(overrides)
    return SmtpConfig(**values)  # type: ignore[arg-type]


def test_sends_plain_text_and_html_parts(smtp_server: SmtpInbox) -> None:
    result = send_email(config(smtp_server), MESSAGE)

    assert result.status_code == 250
    [(envelope, mime)] = smtp_server.messages
    assert envelope.rcpt_tos == ["nurse.rome@example.org"]
    assert mime["Subject"] == MESSAGE.subject
    assert mime["Message-ID"] == "<alert-7f3a@example.org>"
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in mime.walk()
        if not part.is_multipart()
    }
    assert "was due 2024-07-31" in parts["text/plain"]
    assert "<strong>ROM-001</strong>" in parts["text/html"]


def test_authenticates_when_configured(smtp_server: SmtpInbox) -> None:
    send_email(config(smtp_server, username="nurse-bot", password="s3cret-pass"), MESSAGE)
    assert len(smtp_server.messages) == 1


def test_wrong_credentials_are_permanent(smtp_server: SmtpInbox) -> None:
    with pytest.raises(PermanentDeliveryError, match="authentication failed"):
        send_email(config(smtp_server, username="nurse-bot", password="wrong"), MESSAGE)
    assert smtp_server.messages == []


def test_refused_recipient_is_permanent(smtp_server: SmtpInbox) -> None:
    smtp_server.refuse_with = "550 mailbox unavailable"
    with pytest.raises(PermanentDeliveryError, match="refused"):
        send_email(config(smtp_server), MESSAGE)


def test_busy_server_is_transient(smtp_server: SmtpInbox) -> None:
    smtp_server.refuse_with = "451 try again later"
    with pytest.raises(TransientDeliveryError):
        send_email(config(smtp_server), MESSAGE)


def test_server_down_is_transient() -> None:
    down = SmtpConfig(host="127.0.0.1", port=free_port(), starttls=False, timeout=2)
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        send_email(down, MESSAGE)


def test_no_recipients_is_permanent(smtp_server: SmtpInbox) -> None:
    with pytest.raises(PermanentDeliveryError):
        send_email(config(smtp_server), EmailMessage(to=(), subject="x", text="x"))


def test_message_ids_with_colons_stay_whole_and_distinct(smtp_server: SmtpInbox) -> None:
    # Alert ids look like "assessment.overdue:17:0:0:email:site:Rome:nurse"; a raw ":" cut
    # every Message-ID down to "<assessment.overdue", the same for all alerts.
    ids = ["assessment.overdue:17:0:0:email:site:Rome:nurse", "assessment.overdue:18:0:0:email:x"]
    for message_id in ids:
        send_email(config(smtp_server), replace(MESSAGE, message_id=message_id))

    # (a long header arrives folded: drop the folding white space)
    received = ["".join(str(mime["Message-ID"]).split()) for _, mime in smtp_server.messages]
    assert [unquote(r.strip("<>").rsplit("@", 1)[0]) for r in received] == ids
    assert all(r.endswith("@example.org>") for r in received)

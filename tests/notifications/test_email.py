from dataclasses import replace
from email import message_from_bytes, policy
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


HOSTILE = "Pneumonia\r\nBcc: everyone@example.org\x00\x07\x1b[31m\u202egnp.exe\ud800 end"


def test_an_event_term_with_control_characters_still_reaches_the_server(
    smtp_server: SmtpInbox,
) -> None:
    """A serious event's term typed with line breaks, NUL, BEL, ESC, a right-to-left override
    and a lone surrogate must not stop its own alert: the header is one line by construction."""
    message = replace(
        MESSAGE,
        subject=f"Serious adverse event: ROM-001 {HOSTILE}",
        text=f"Term: {HOSTILE}\nSecond line\tkept",
        html=f"<p>{HOSTILE}</p>",
        headers={"X-Case": HOSTILE},
    )
    send_email(config(smtp_server), message)

    [(envelope, _)] = smtp_server.messages
    assert envelope.rcpt_tos == ["nurse.rome@example.org"]  # no Bcc smuggled in
    # Parsed as a mail reader would (folded long headers unfolded, encoded words decoded).
    mime = message_from_bytes(envelope.content, policy=policy.default)
    subject = mime["Subject"]
    assert subject.startswith("Serious adverse event: ROM-001 Pneumonia Bcc: everyone")
    assert not any(c in subject for c in "\r\n\x00\x07\x1b\u202e\ud800")
    assert mime["Bcc"] is None
    assert "\n" not in mime["X-Case"]
    text = next(p for p in mime.walk() if p.get_content_type() == "text/plain")
    body = text.get_payload(decode=True).decode()
    assert "Second line\tkept" in body
    assert not any(c in body for c in "\x00\x07\x1b\u202e")


def test_a_message_that_cannot_be_built_is_permanent(smtp_server: SmtpInbox) -> None:
    bad = replace(MESSAGE, to=("nurse.rome@example.org\r\nBcc: x@example.org",))
    with pytest.raises(PermanentDeliveryError, match="cannot be built"):
        send_email(config(smtp_server), bad)
    assert smtp_server.messages == []

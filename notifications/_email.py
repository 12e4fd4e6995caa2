"""Email over SMTP (STARTTLS and authentication when configured)."""

from __future__ import annotations

import re
import smtplib
import ssl
import unicodedata
from dataclasses import dataclass, field
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, make_msgid
from urllib.parse import quote

from ._errors import PermanentDeliveryError, TransientDeliveryError
from ._result import DeliveryResult


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    from_address: str = "ltfu-surveillance@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    timeout: float = 15.0


@dataclass(frozen=True)
class EmailMessage:
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    # The alert id: receivers and mail filters can de-duplicate retries by it.
    message_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


# RFC 5322 atext (letters and digits are always safe for ``quote``); "%" is left out so
# that it is escaped too and the encoding stays one-to-one.
_ATEXT_SAFE = "!#$&'*+-/=?^_`{|}~"


def message_id_part(message_id: str) -> str:
    """``message_id`` as the left part of a Message-ID (an RFC 5322 dot-atom).

    Alert ids contain ``:``, which the header parser stops at (every alert would share
    the Message-ID ``<assessment.overdue``): other characters are %-escaped, one-to-one,
    so distinct ids stay distinct and ``urllib.parse.unquote`` gives the id back.
    """
    encoded = quote(message_id, safe=_ATEXT_SAFE + ".")
    # A dot-atom has no leading, trailing or doubled dots.
    return re.sub(r"^\.|\.$|\.(?=\.)", "%2E", encoded)


# Characters that would end a header line or reorder what a reader sees: every control
# character (C0, DEL, C1), the Unicode line and paragraph separators, bidi overrides.
_NOT_IN_A_HEADER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
# In a body, line breaks and tabs are text; the other control characters are not.
_NOT_IN_A_BODY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def one_line(value: str) -> str:
    """``value`` as a header can carry it: one line, whatever text an event's term or a
    name brought in (a line break in a header would make the message unsendable)."""
    cleaned = _NOT_IN_A_HEADER.sub(" ", value)
    # A lone surrogate cannot be encoded at all.
    cleaned = "".join("\ufffd" if unicodedata.category(c) == "Cs" else c for c in cleaned)
    return re.sub(r" {2,}", " ", cleaned).strip()


def _body(value: str) -> str:
    cleaned = _NOT_IN_A_BODY.sub("", value)
    return "".join("\ufffd" if unicodedata.category(c) == "Cs" else c for c in cleaned)


def build_mime(config: SmtpConfig, message: EmailMessage) -> MimeMessage:
    """The message as MIME; headers are made single-line here, where they are built, so no
    content can make its own alert unsendable."""
    mime = MimeMessage()
    mime["From"] = config.from_address
    mime["To"] = ", ".join(message.to)
    mime["Subject"] = one_line(message.subject)
    mime["Date"] = formatdate(localtime=False)
    domain = config.from_address.rpartition("@")[2] or "localhost"
    mime["Message-ID"] = (
        f"<{message_id_part(message.message_id)}@{domain}>"
        if message.message_id
        else make_msgid(domain=domain)
    )
    for name, value in message.headers.items():
        mime[name] = one_line(value)
    mime.set_content(_body(message.text))
    if message.html is not None:
        mime.add_alternative(_body(message.html), subtype="html")
    return mime


def send_email(config: SmtpConfig, message: EmailMessage) -> DeliveryResult:
    """Send one email; raise ``TransientDeliveryError`` or ``PermanentDeliveryError``."""
    if not message.to:
        raise PermanentDeliveryError("no recipients")
    try:
        mime = build_mime(config, message)
    except (ValueError, TypeError) as exc:
        # The message itself is at fault: sending it again cannot help.
        raise PermanentDeliveryError(f"the message cannot be built: {exc}") from exc
    try:
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.username:
                smtp.login(config.username, config.password or "")
            refused = smtp.send_message(mime)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        # 4xx for every recipient is a busy or greylisting server: try again later.
        error = (
            TransientDeliveryError if all(400 <= c < 500 for c in codes) else PermanentDeliveryError
        )
        raise error(
            f"recipients refused: {exc.recipients}", status_code=max(codes, default=None)
        ) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise PermanentDeliveryError(
            f"SMTP authentication failed: {exc.smtp_code} {exc.smtp_error!r}",
            status_code=exc.smtp_code,
        ) from exc
    except smtplib.SMTPResponseException as exc:
        error = PermanentDeliveryError if 500 <= exc.smtp_code < 600 else TransientDeliveryError
        raise error(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", status_code=exc.smtp_code) from exc
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise TransientDeliveryError(
            f"SMTP server {config.host}:{config.port} unreachable: {exc}"
        ) from exc
    if refused:
        raise PermanentDeliveryError(f"recipients refused: {sorted(refused)}")
    return DeliveryResult(
        250, f"accepted by {config.host}:{config.port} for {len(message.to)} recipient(s)"
    )

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from support.peers import Receiver, free_port

from notifications import (
    DeliveryResult,
    PermanentDeliveryError,
    TransientDeliveryError,
    WebhookMessage,
    new_webhook_secret,
)
from notifications import send_webhook as send_checked

SECRET = new_webhook_secret()


def send_webhook(client: httpx.Client, message: WebhookMessage, **options: Any) -> DeliveryResult:
    """The receivers here listen on 127.0.0.1 (test_webhook_targets.py checks refusals)."""
    return send_checked(client, message, allow_private=True, **options)


def message(url: str, secrets: tuple[str, ...] = (SECRET,)) -> WebhookMessage:
    return WebhookMessage(
        url=url,
        message_id="alrt_01HZX3",
        event_type="assessment.overdue",
        timestamp=datetime(2026, 11, 25, 6, 0, tzinfo=UTC),
        data={"study_id": "ROM-001", "assessment": "rcl_test", "days_overdue": 1},
        secrets=secrets,
    )


@pytest.fixture
def client() -> httpx.Client:
    with httpx.Client() as c:
        yield c


def test_signed_request_verifies_with_the_reference_library(
    receiver: Receiver, client: httpx.Client
) -> None:
    result = send_webhook(client, message(receiver.url))

    assert result.status_code == 200
    [request] = receiver.requests
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload == {
        "type": "assessment.overdue",
        "timestamp": "2026-11-25T06:00:00+00:00",
        "data": {"study_id": "ROM-001", "assessment": "rcl_test", "days_overdue": 1},
    }
    assert request.headers["webhook-id"] == "alrt_01HZX3"


def test_during_rotation_both_secrets_verify(receiver: Receiver, client: httpx.Client) -> None:
    new_secret = new_webhook_secret()
    send_webhook(client, message(receiver.url, (new_secret, SECRET)))
    [request] = receiver.requests
    Webhook(SECRET).verify(request.body, request.headers)
    Webhook(new_secret).verify(request.body, request.headers)
    assert len(request.headers["webhook-signature"].split(" ")) == 2


def test_wrong_secret_does_not_verify(receiver: Receiver, client: httpx.Client) -> None:
    send_webhook(client, message(receiver.url))
    [request] = receiver.requests
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(new_webhook_secret()).verify(request.body, request.headers)


@pytest.mark.parametrize(
    ("status", "headers", "error", "check"),
    [
        (500, {}, TransientDeliveryError, lambda e: e.status_code == 500),
        (503, {}, TransientDeliveryError, lambda e: e.status_code == 503),
        (
            429,
            {"Retry-After": "120"},
            TransientDeliveryError,
            lambda e: e.retry_after == timedelta(seconds=120),
        ),
        (410, {}, PermanentDeliveryError, lambda e: e.gone),
        (400, {}, PermanentDeliveryError, lambda e: not e.gone),
        (
            302,
            {"Location": "http://127.0.0.1:1/elsewhere"},
            PermanentDeliveryError,
            lambda e: "not followed" in e.detail,
        ),
    ],
)
def test_answers_are_classified(
    receiver: Receiver,
    client: httpx.Client,
    status: int,
    headers: dict[str, str],
    error: type[Exception],
    check: object,
) -> None:
    receiver.script = [(status, headers, 0.0)]
    with pytest.raises(error) as caught:
        send_webhook(client, message(receiver.url))
    assert check(caught.value)  # type: ignore[operator]
    assert len(receiver.requests) == 1  # a redirect is not followed


def test_connection_refused_is_transient(client: httpx.Client) -> None:
    with pytest.raises(TransientDeliveryError, match="could not connect"):
        send_webhook(client, message(f"http://127.0.0.1:{free_port()}/hooks"))


def test_slow_receiver_times_out_as_transient(receiver: Receiver, client: httpx.Client) -> None:
    receiver.script = [(200, {}, 1.5)]
    with pytest.raises(TransientDeliveryError, match="timed out"):
        send_webhook(client, message(receiver.url), timeout=httpx.Timeout(0.5))


def test_retries_carry_the_same_id(receiver: Receiver, client: httpx.Client) -> None:
    receiver.script = [(500, {}, 0.0), (500, {}, 0.0), (200, {}, 0.0)]
    for _ in range(2):
        with pytest.raises(TransientDeliveryError):
            send_webhook(client, message(receiver.url))
    send_webhook(client, message(receiver.url))
    assert [r.headers["webhook-id"] for r in receiver.requests] == ["alrt_01HZX3"] * 3

from datetime import timedelta

import pytest

from notifications import RETRY_SCHEDULE, InvalidWebhookUrl, next_retry_delay, validate_webhook_url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.org/hook", "only http and https"),
        ("http://127.0.0.1:8080/hook", "private, loopback or link-local"),
        ("http://localhost/hook", "private, loopback or link-local"),
        ("http://10.1.2.3/hook", "private, loopback or link-local"),
        ("http://192.168.0.10/hook", "private, loopback or link-local"),
        ("http://169.254.169.254/latest/meta-data", "private, loopback or link-local"),
        ("http://[::1]/hook", "private, loopback or link-local"),
        ("https://user:pw@93.184.216.34/hook", "credentials"),
        ("https:///nohost", "no host"),
    ],
)
def test_refused_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(InvalidWebhookUrl, match=reason):
        validate_webhook_url(url, resolve=False)


def test_public_address_is_accepted() -> None:
    assert (
        validate_webhook_url("https://93.184.216.34/hook", resolve=False)
        == "https://93.184.216.34/hook"
    )


def test_private_addresses_allowed_when_configured() -> None:
    assert validate_webhook_url("http://127.0.0.1:9000/hook", allow_private=True)


def test_retry_schedule_then_give_up() -> None:
    delays = [next_retry_delay(n) for n in range(1, len(RETRY_SCHEDULE) + 2)]
    assert delays[:3] == [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30)]
    assert delays[-1] is None


def test_retry_after_is_honoured_but_capped() -> None:
    assert next_retry_delay(1, timedelta(minutes=2)) == timedelta(minutes=2)
    assert next_retry_delay(1, timedelta(days=3)) == timedelta(hours=10)
    assert next_retry_delay(3, timedelta(seconds=1)) == timedelta(minutes=30)

"""Webhook signing secrets are stored encrypted (Fernet), with keys that rotate."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from surveillance.alerting import endpoints
from surveillance.kit import migrate, secret_box
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.records.outbox import WebhookEndpoint


@pytest.fixture
def ring() -> Iterator[secret_box.KeyRing]:
    """A key ring of its own for the test; the process's one is put back afterwards."""
    before = secret_box.current()
    ring = secret_box.KeyRing([secret_box.new_key()])
    secret_box.install(ring)
    yield ring
    secret_box.install(before)


def _stored(engine: Engine, endpoint_id: str) -> tuple[str, str | None]:
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT secret, previous_secret FROM webhook_endpoints WHERE id = :id"),
            {"id": endpoint_id},
        ).one()
    return row[0], row[1]


def test_signing_secrets_are_encrypted_in_the_database(
    engine: Engine, ring: secret_box.KeyRing, now: datetime
) -> None:
    with write_session(engine) as session:
        made = endpoints.add_endpoint(
            session, url="https://hooks.example.org/x", events=["adverse_event.serious"],
            site_id=None, allow_private=True, actor="test", now=now,
        )  # fmt: skip
    endpoint_id = made.endpoint.id
    stored, _ = _stored(engine, endpoint_id)
    assert stored.startswith("fernet:")
    assert made.secret not in stored
    assert made.secret.removeprefix("whsec_") not in stored

    with write_session(engine) as session:
        rotated = endpoints.rotate_secret(session, endpoint_id, actor="test", now=now)
    stored, previous = _stored(engine, endpoint_id)
    assert previous is not None
    assert previous.startswith("fernet:")
    assert rotated.secret not in stored
    assert made.secret not in previous

    with read_session(engine) as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        assert (endpoint.secret, endpoint.previous_secret) == (rotated.secret, made.secret)


def test_a_rotated_key_still_reads_old_rows_then_reencrypts_them(
    engine: Engine, ring: secret_box.KeyRing, now: datetime
) -> None:
    old_key, new_key = secret_box.new_key(), secret_box.new_key()
    secret_box.install(secret_box.KeyRing([old_key]))
    with write_session(engine) as session:
        made = endpoints.add_endpoint(
            session, url="https://hooks.example.org/x", events=["adverse_event.serious"],
            site_id=None, allow_private=True, actor="test", now=now,
        )  # fmt: skip
    before, _ = _stored(engine, made.endpoint.id)

    secret_box.install(secret_box.KeyRing([new_key, old_key]))  # new first, old still read
    with write_session(engine) as session:
        assert endpoints.reencrypt_secrets(session) == 1
    after, _ = _stored(engine, made.endpoint.id)
    assert after != before

    secret_box.install(secret_box.KeyRing([new_key]))  # the old key removed
    with read_session(engine) as session:
        endpoint = session.get(WebhookEndpoint, made.endpoint.id)
        assert endpoint is not None
        assert endpoint.secret == made.secret
    secret_box.install(secret_box.KeyRing([old_key]))
    with read_session(engine) as session, pytest.raises(secret_box.SecretKeyError):
        session.get(WebhookEndpoint, made.endpoint.id)


def test_migration_0010_encrypts_the_existing_secrets(
    database_url: str, ring: secret_box.KeyRing
) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM webhook_endpoints"))
        _down(engine)
        plain = "whsec_" + "A" * 44
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO webhook_endpoints (id, url, event_types, enabled, secret, "
                    "previous_secret, created_at) VALUES ('wh_old', 'https://h.example/', "
                    "'adverse_event.serious', true, :secret, :secret, '2026-01-01 00:00:00')"
                ),
                {"secret": plain},
            )
        migrate.upgrade(engine)
        stored, previous = _stored(engine, "wh_old")
        assert stored.startswith("fernet:")
        assert previous is not None
        assert plain not in stored
        assert plain not in previous
        with read_session(engine) as session:
            endpoint = session.get(WebhookEndpoint, "wh_old")
            assert endpoint is not None
            assert (endpoint.secret, endpoint.previous_secret) == (plain, plain)
    finally:
        engine.dispose()


def _down(engine: Engine) -> None:
    config = migrate.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")


def test_without_a_configured_key_a_key_file_is_made_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    keys = secret_box.keys_from(None, data_dir)
    key_file = data_dir / secret_box.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert secret_box.keys_from(None, data_dir) == keys  # kept, never replaced
    assert secret_box.keys_from("k1,k2", data_dir) == ["k1", "k2"]

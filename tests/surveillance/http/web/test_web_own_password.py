"""A signed-in user changes their own password: the current one checked and throttled as
at sign-in, the new one twice and by the ``users`` rule, the other sessions ended, all of
it audited; in the reader's language."""

from __future__ import annotations

import json

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from support.web_support import PASSWORD, USERS, SiteDb, csrf_of, make_client, sign_in_as

from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session

NEW = "violet tractor quietly hums at dawn"
NURSE = USERS["nurse"][0]
PAGE = "/account/password"


def _change(
    client: TestClient, current: str, new: str = NEW, repeated: str | None = None
) -> httpx.Response:
    token = csrf_of(client.get(PAGE))
    data = {"current": current, "new": new, "repeated": new if repeated is None else repeated}
    return client.post(PAGE, data={**data, "csrf_token": token})


def _actions(site_db: SiteDb, *names: str) -> list[tuple[str, str, dict[str, object]]]:
    with read_session(site_db.engine) as session:
        rows = session.execute(
            select(AuditEntry).where(AuditEntry.action.in_(names))  # type: ignore[attr-defined]
        ).scalars()
        return [(r.action, r.actor, json.loads(r.new_values or "{}")) for r in rows]


def _own_changes(site_db: SiteDb) -> list[dict[str, object]]:
    """The nurse's own password changes (the setup set every password as ``test``)."""
    return [new for _, actor, new in _actions(site_db, "set_password") if actor == NURSE]


def _signed_in(response: httpx.Response) -> bool:
    return response.status_code == 303 and "ltfu_session" in response.cookies


def test_the_page_is_for_signed_in_users(pages: TestClient) -> None:
    response = pages.get(PAGE)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    sign_in_as(pages, "nurse")
    page = pages.get(PAGE)
    assert page.status_code == 200
    for field in ('name="current"', 'name="new"', 'name="repeated"'):
        assert field in page.text
    assert 'autocomplete="new-password"' in page.text
    assert f'href="{PAGE}"' in pages.get("/sites/Rome/due").text  # linked from every page


def test_a_change_keeps_this_session_and_ends_the_others(site_db: SiteDb) -> None:
    with make_client(site_db.url) as here, make_client(site_db.url) as elsewhere:
        sign_in_as(here, "nurse")
        sign_in_as(elsewhere, "nurse")
        response = _change(here, PASSWORD)
        assert response.status_code == 303
        assert response.headers["location"] == "/sites/Rome/due"
        landing = here.get("/sites/Rome/due")
        assert "Your password is changed. Your other sessions are signed out." in landing.text
        assert elsewhere.get("/sites/Rome/due").status_code == 303  # signed out
        assert here.get(PAGE).status_code == 200  # still signed in
    with make_client(site_db.url) as fresh:
        assert not _signed_in(sign_in_as(fresh, "nurse", PASSWORD))
        assert _signed_in(sign_in_as(fresh, "nurse", NEW))
    assert _own_changes(site_db) == [{"sessions_ended": 1}]


def test_a_wrong_current_password_is_counted_and_throttled_like_a_sign_in(
    pages: TestClient, site_db: SiteDb
) -> None:
    """The clock is stopped: after two failures the next attempt must wait 2 s, so the
    third is refused even with the right password."""
    sign_in_as(pages, "nurse")
    for guess in ("wrong guess one", "wrong guess two"):
        refused = _change(pages, guess)
        assert refused.status_code == 422
        assert "Your current password is not right." in refused.text
    throttled = _change(pages, PASSWORD)
    assert throttled.status_code == 429
    assert "Too many failed attempts. Wait 1 min and try again." in throttled.text
    failed = _actions(site_db, "password_change_failed")
    assert [(action, actor) for action, actor, _ in failed] == [
        ("password_change_failed", NURSE)
    ] * 2
    assert all(new == {"client": "testclient"} for *_, new in failed)
    assert not any("wrong guess" in str(row) for row in _actions(site_db, "password_change_failed"))
    with make_client(site_db.url) as other:  # the same count as the sign-in form's
        assert "Too many failed attempts" in sign_in_as(other, "nurse").text
    assert _own_changes(site_db) == []


def test_the_new_password_is_typed_twice_and_follows_the_users_rule(
    pages: TestClient, site_db: SiteDb
) -> None:
    sign_in_as(pages, "nurse")
    for new, repeated, message in (
        (NEW, NEW + "!", "The two new passwords differ: type the same one twice."),
        ("short words", None, "A password needs at least 12 characters."),
        ("password1234", None, "This password is common or easy to guess"),
        ("nurse is my best friend", None, "may not contain the name of its email"),
        (PASSWORD, None, "The new password is the current one: choose another."),
    ):
        refused = _change(pages, PASSWORD, new, repeated)
        assert refused.status_code == 422, new
        assert message in refused.text, new
        assert 'aria-invalid="true"' in refused.text
    assert _own_changes(site_db) == []
    assert _actions(site_db, "password_change_failed") == []
    with make_client(site_db.url) as fresh:
        assert _signed_in(sign_in_as(fresh, "nurse", PASSWORD))  # unchanged


def test_the_page_and_its_refusals_are_in_the_readers_language(pages: TestClient) -> None:
    pages.headers["Accept-Language"] = "de-DE"
    sign_in_as(pages, "nurse")
    page = pages.get(PAGE)
    assert "<h1>Passwort ändern</h1>" in page.text
    refused = _change(pages, PASSWORD, "short words")
    assert "Ein Passwort braucht mindestens 12 Zeichen." in refused.text
    pages.headers["Accept-Language"] = "it-IT"
    assert "Le due nuove password sono diverse" in _change(pages, PASSWORD, NEW, "x").text


def test_a_change_without_the_forms_token_is_refused(pages: TestClient, site_db: SiteDb) -> None:
    sign_in_as(pages, "nurse")
    response = pages.post(PAGE, data={"current": PASSWORD, "new": NEW, "repeated": NEW})
    assert response.status_code == 403
    assert _own_changes(site_db) == []

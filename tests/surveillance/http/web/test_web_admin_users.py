"""The admin's users page: deactivate (ending the sessions) and reactivate, with CSRF."""

from __future__ import annotations

from fastapi.testclient import TestClient
from support.web_support import USERS, SiteDb, csrf_of, make_client, sign_in_as

NURSE = USERS["nurse"][0]


def test_an_admin_deactivates_a_nurse_whose_session_ends(
    pages: TestClient, site_db: SiteDb
) -> None:
    with make_client(site_db.url) as nurse:
        assert sign_in_as(nurse, "nurse").status_code == 303
        assert nurse.get("/sites/Rome/due").status_code == 200
        sign_in_as(pages, "admin")
        page = pages.get("/admin/users")
        assert page.status_code == 200
        assert f'action="/admin/users/{NURSE.replace("@", "%40")}/deactivate"' in page.text
        done = pages.post(f"/admin/users/{NURSE}/deactivate", data={"csrf_token": csrf_of(page)})
        assert done.status_code == 303
        assert nurse.get("/sites/Rome/due").status_code == 303  # back to sign in
        refused = sign_in_as(nurse, "nurse")
        assert refused.status_code == 200
        assert "Wrong email or password" in refused.text
        page = pages.get("/admin/users")
        assert "deactivated" in page.text
        back = pages.post(f"/admin/users/{NURSE}/reactivate", data={"csrf_token": csrf_of(page)})
        assert back.status_code == 303
        assert sign_in_as(nurse, "nurse").status_code == 303


def test_without_the_csrf_token_nothing_changes(pages: TestClient) -> None:
    sign_in_as(pages, "admin")
    assert pages.post(f"/admin/users/{NURSE}/deactivate", data={}).status_code == 403
    assert "deactivated" not in pages.get("/admin/users").text


def test_a_nurse_cannot_open_the_page(pages: TestClient) -> None:
    sign_in_as(pages, "nurse")
    assert pages.get("/admin/users").status_code == 403


def test_the_page_is_in_the_admins_language_and_in_the_navigation(pages: TestClient) -> None:
    sign_in_as(pages, "admin")
    dashboard = pages.get("/dashboard", headers={"Accept-Language": "it-IT"})
    assert '<a href="/admin/users"' in dashboard.text
    page = pages.get("/admin/users", headers={"Accept-Language": "it-IT"})
    assert "<h1>Utenti</h1>" in page.text
    assert f'aria-label="Disattiva {NURSE}"' in page.text
    assert "Deactivate" not in page.text
    done = pages.post(
        f"/admin/users/{NURSE}/deactivate",
        data={"csrf_token": csrf_of(page)},
        headers={"Accept-Language": "de-DE"},
    )
    assert done.status_code == 303
    german = pages.get("/admin/users", headers={"Accept-Language": "de-DE"})
    assert f"{NURSE} ist deaktiviert" in german.text
    assert f'aria-label="{NURSE} reaktivieren"' in german.text

"""Admins deactivate and reactivate users through the API; nobody else can."""

from __future__ import annotations

from support.api_support import USERS, Api

NURSE = USERS["nurse"][0]


def test_an_admin_deactivates_a_user_whose_token_stops_at_once(api: Api) -> None:
    assert api.get("/api/v1/patients", role="nurse").status_code == 200  # now cached
    response = api.client.post(f"/api/v1/users/{NURSE}/deactivate", headers=api.headers("admin"))
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    assert api.get("/api/v1/patients", role="nurse").status_code == 401
    again = api.client.post(f"/api/v1/users/{NURSE}/deactivate", headers=api.headers("admin"))
    assert again.status_code == 409
    back = api.client.post(f"/api/v1/users/{NURSE}/reactivate", headers=api.headers("admin"))
    assert back.status_code == 200
    assert back.json()["active"] is True
    # the old token stays revoked
    assert api.get("/api/v1/patients", role="nurse").status_code == 401


def test_only_admins_manage_users(api: Api) -> None:
    for role in ("nurse", "investigator", "pharmacovigilance"):
        response = api.client.post(
            f"/api/v1/users/{USERS['admin'][0]}/deactivate", headers=api.headers(role)
        )
        assert response.status_code == 403
        assert api.get("/api/v1/users", role=role).status_code == 403
    listed = api.get("/api/v1/users", role="admin").json()
    assert {u["email"] for u in listed} == {email for email, _ in USERS.values()}


def test_an_unknown_user_is_404(api: Api) -> None:
    response = api.client.post(
        "/api/v1/users/nobody@example.org/deactivate", headers=api.headers("admin")
    )
    assert response.status_code == 404

"""Administration through the UI's API: a regular user is refused every admin route."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import MakeClient

ADMIN_ROUTES = [
    ("GET", "/ui/api/admin/users", None),
    ("POST", "/ui/api/admin/users", {"username": "eve", "password": "12345678x"}),
    ("PATCH", "/ui/api/admin/users/1", {"role": "user"}),
    ("DELETE", "/ui/api/admin/users/1", None),
    ("GET", "/ui/api/admin/settings", None),
    ("PATCH", "/ui/api/admin/settings", {"signup": True}),
    ("GET", "/ui/api/admin/keys", None),
    ("POST", "/ui/api/admin/keys", {"name": "mine"}),
    ("DELETE", "/ui/api/admin/keys/1", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_a_regular_user_gets_403(
    user: TestClient, make_client: MakeClient, method: str, path: str, body: object
) -> None:
    response = user.request(method, path, json=body)
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden: administrators only"}
    anonymous = make_client().request(method, path, json=body)
    assert anonymous.status_code == 401


def test_admin_manages_users(admin: TestClient, make_client: MakeClient) -> None:
    created = admin.post(
        "/ui/api/admin/users", json={"username": "erin", "password": "erins pass", "role": "user"}
    ).json()
    assert created["role"] == "user" and created["status"] == "active"
    dup = admin.post("/ui/api/admin/users", json={"username": "ERIN", "password": "12345678"})
    assert dup.status_code == 409  # names are case-insensitive
    reset = admin.patch(f"/ui/api/admin/users/{created['id']}", json={"password": "new pass 99"})
    assert reset.is_success
    erin = make_client()
    assert (
        erin.post("/ui/api/login", json={"username": "erin", "password": "erins pass"}).status_code
        == 401
    )
    assert erin.post(
        "/ui/api/login", json={"username": "erin", "password": "new pass 99"}
    ).is_success
    assert admin.delete(f"/ui/api/admin/users/{created['id']}").json() == {"ok": True}
    assert [u["username"] for u in admin.get("/ui/api/admin/users").json()["users"]] == ["admin"]
    assert admin.delete("/ui/api/admin/users/999").status_code == 404

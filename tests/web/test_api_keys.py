"""API keys made in the web UI guard /api and /v1, as CORRAL_API_KEYS ones do; a browser
session passes too (an admin's as a full key, a user's as a read-only one)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient

from tests.web.conftest import MakeClient


def test_a_web_key_is_shown_once_stored_hashed_and_required(
    admin: TestClient, make_client: MakeClient, tmp_path: Path
) -> None:
    outsider = make_client()
    assert outsider.get("/api/tags").status_code == 200  # no key anywhere: open, as Ollama

    created = admin.post("/ui/api/admin/keys", json={"name": "laptop"}).json()
    key = created["key"]
    assert key.startswith("corral-") and len(key) > 40 and created["scope"] == "full"
    [listed] = admin.get("/ui/api/admin/keys").json()["keys"]
    assert "key" not in listed and listed["prefix"] == key[:12] and listed["created_by"] == "admin"
    with sqlite3.connect(tmp_path / "home" / "corral.db") as db:
        [(stored,)] = db.execute("SELECT key_hash FROM api_keys").fetchall()
    assert key.encode() not in stored and len(stored) == 32

    refused = outsider.get("/api/tags")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert outsider.get("/v1/models").status_code == 401
    bearer = {"Authorization": f"Bearer {key}"}
    assert outsider.get("/api/tags", headers=bearer).status_code == 200
    assert outsider.get("/v1/models", headers=bearer).status_code == 200
    wrong = outsider.get("/api/tags", headers={"Authorization": f"Bearer {key}x"})
    assert wrong.status_code == 401

    assert admin.delete(f"/ui/api/admin/keys/{listed['id']}").json() == {"ok": True}
    assert outsider.get("/api/tags", headers=bearer).status_code == 200  # no key left: open
    assert admin.get("/ui/api/admin/keys").json()["keys"] == []


def test_a_read_only_web_key_cannot_pull(admin: TestClient, make_client: MakeClient) -> None:
    key = admin.post("/ui/api/admin/keys", json={"name": "ci", "scope": "read-only"}).json()["key"]
    client = make_client()
    client.headers["Authorization"] = f"Bearer {key}"
    assert client.get("/api/tags").status_code == 200
    pull = client.post("/api/pull", json={"model": "x"})
    assert pull.status_code == 403 and "read-only" in pull.json()["error"]


def test_revoked_key_stops_working_while_others_remain(
    admin: TestClient, make_client: MakeClient
) -> None:
    first = admin.post("/ui/api/admin/keys", json={"name": "one"}).json()
    second = admin.post("/ui/api/admin/keys", json={"name": "two"}).json()
    admin.delete(f"/ui/api/admin/keys/{first['id']}")
    client = make_client()
    old = client.get("/api/tags", headers={"Authorization": f"Bearer {first['key']}"})
    assert old.status_code == 401
    new = client.get("/api/tags", headers={"Authorization": f"Bearer {second['key']}"})
    assert new.status_code == 200


def test_env_and_web_keys_work_together(make_client: MakeClient) -> None:
    client = make_client(api_keys="env-key-1")
    assert client.get("/api/tags").status_code == 401
    assert client.get("/api/tags", headers={"Authorization": "Bearer env-key-1"}).is_success
    # the UI's own routes are not behind API keys, but creating the admin takes a full key
    # from a remote client (see test_setup.py)
    me = client.post(
        "/ui/api/setup",
        json={"username": "admin", "password": "12345678x"},
        headers={"Authorization": "Bearer env-key-1"},
    ).json()
    client.headers["X-CSRF-Token"] = me["csrf"]
    web_key = client.post("/ui/api/admin/keys", json={"name": "w"}).json()["key"]
    other = make_client(api_keys="env-key-1")
    assert other.get("/api/tags", headers={"Authorization": f"Bearer {web_key}"}).is_success
    assert other.get("/api/tags", headers={"Authorization": "Bearer env-key-1"}).is_success


def test_browser_sessions_pass_the_key_check_by_role(
    admin: TestClient, user: TestClient, make_client: MakeClient
) -> None:
    admin.post("/ui/api/admin/keys", json={"name": "turns keys on"})
    # the admin's page: reads with the cookie alone, writes with the CSRF token too
    assert admin.get("/api/tags").status_code == 200
    assert admin.get("/api/ps").status_code == 200
    token = admin.headers.pop("X-CSRF-Token")
    no_csrf = admin.request("DELETE", "/api/delete", json={"model": "nope:1"})
    assert no_csrf.status_code == 403  # not "requires an API key": the cookie was there
    assert "CSRF" in no_csrf.json()["error"] and "x-csrf-token" in no_csrf.json()["error"]
    assert "www-authenticate" not in no_csrf.headers
    v1 = admin.post("/v1/chat/completions", json={"model": "x", "messages": []})
    assert v1.status_code == 403 and "CSRF" in v1.json()["error"]["message"]
    with_csrf = admin.request(
        "DELETE", "/api/delete", json={"model": "nope:1"}, headers={"X-CSRF-Token": token}
    )
    assert with_csrf.status_code == 404  # through the key check, to the route itself
    # a regular user's page may list and chat but not administer models
    assert user.get("/api/tags").status_code == 200
    pull = user.post("/api/pull", json={"model": "smollm2:135m"})
    assert pull.status_code == 403 and "read-only" in pull.json()["error"]
    delete = user.request("DELETE", "/api/delete", json={"model": "nope:1"})
    assert delete.status_code == 403
    # a signed-out browser has nothing
    assert make_client().get("/api/tags").status_code == 401

"""Accounts through the UI's API: first-run admin, sign-in/out, cookies, rate limit, sign-up."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient

from corral.web.db import MIGRATIONS, Database
from tests.web.conftest import ADMIN, USER, MakeClient, user_id


def _creds(pair: tuple[str, str]) -> dict[str, str]:
    return {"username": pair[0], "password": pair[1]}


def test_first_visit_creates_the_admin_once(make_client: MakeClient, tmp_path: Path) -> None:
    client = make_client()
    assert client.get("/ui/api/state").json() == {
        "auth": True,
        "needs_setup": True,
        "signup": False,
        "setup_needs_key": False,
    }
    assert client.get("/ui/api/me").status_code == 401

    response = client.post("/ui/api/setup", json=_creds(ADMIN))
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "admin" and body["user"]["role"] == "admin"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("corral_session_11434=")  # the port: one cookie per server
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert client.get("/ui/api/me").json()["user"]["username"] == "admin"
    assert client.get("/ui/api/state").json()["needs_setup"] is False

    # a second set-up, from anyone, is refused
    again = make_client().post("/ui/api/setup", json=_creds(("mallory", "12345678x")))
    assert again.status_code == 409
    # the password is stored as an argon2id hash, and so is no session token
    with sqlite3.connect(tmp_path / "home" / "corral.db") as db:
        [(digest,)] = db.execute("SELECT password_hash FROM users").fetchall()
        tokens = [row[0] for row in db.execute("SELECT token_hash FROM sessions")]
    assert digest.startswith("$argon2id$") and ADMIN[1] not in digest
    session_token = cookie.split(";")[0].split("=", 1)[1]
    assert session_token.encode() not in tokens and len(tokens[0]) == 32


def test_short_password_and_bad_name_are_refused(make_client: MakeClient) -> None:
    client = make_client()
    short = client.post("/ui/api/setup", json={"username": "admin", "password": "short"})
    assert short.status_code == 400 and "at least 8" in short.json()["error"]
    bad = client.post("/ui/api/setup", json={"username": "<b>x</b>", "password": "12345678"})
    assert bad.status_code == 400 and "username" in bad.json()["error"]


def test_sign_out_and_in(admin: TestClient, make_client: MakeClient) -> None:
    assert admin.post("/ui/api/logout").json() == {"ok": True}
    assert admin.get("/ui/api/me").status_code == 401
    other = make_client()
    wrong = other.post("/ui/api/login", json={"username": "admin", "password": "nope-nope"})
    assert wrong.status_code == 401 and wrong.json() == {"error": "wrong user name or password"}
    right = other.post("/ui/api/login", json=_creds(ADMIN))
    assert right.status_code == 200
    assert other.get("/ui/api/me").json()["user"]["role"] == "admin"


def test_logout_needs_the_csrf_token(admin: TestClient) -> None:
    del admin.headers["X-CSRF-Token"]
    response = admin.post("/ui/api/logout")
    assert response.status_code == 403 and "CSRF" in response.json()["error"]
    assert admin.get("/ui/api/me").status_code == 200


def test_login_attempts_are_rate_limited(admin: TestClient, make_client: MakeClient) -> None:
    client = make_client()
    for _ in range(5):
        response = client.post("/ui/api/login", json={"username": "admin", "password": "guess-123"})
        assert response.status_code == 401
    limited = client.post("/ui/api/login", json=_creds(ADMIN))  # even the right password
    assert limited.status_code == 429
    assert "too many failed sign-ins" in limited.json()["error"]
    assert int(limited.headers["retry-after"]) > 0


def test_cross_origin_sign_in_is_refused(admin: TestClient, make_client: MakeClient) -> None:
    response = make_client().post(
        "/ui/api/login", json=_creds(ADMIN), headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403
    same = make_client().post(
        "/ui/api/login", json=_creds(ADMIN), headers={"Origin": "http://testserver"}
    )
    assert same.status_code == 200
    proxied = make_client().post(  # a reverse proxy that rewrote Host says where the page was
        "/ui/api/login",
        json=_creds(ADMIN),
        headers={"Origin": "https://chat.example", "X-Forwarded-Host": "chat.example"},
    )
    assert proxied.status_code == 200


def test_sign_up_is_off_until_enabled_then_waits_for_approval(
    admin: TestClient, make_client: MakeClient
) -> None:
    visitor = make_client()
    carol = {"username": "carol", "password": "carols secret"}
    assert visitor.post("/ui/api/register", json=carol).status_code == 403

    settings = admin.patch("/ui/api/admin/settings", json={"signup": True}).json()
    assert settings == {"signup": True, "approval": True}
    assert visitor.get("/ui/api/state").json()["signup"] is True
    registered = visitor.post("/ui/api/register", json=carol).json()
    assert registered["pending"] is True and registered["user"]["status"] == "pending"
    pending = visitor.post("/ui/api/login", json=carol)
    assert pending.status_code == 403 and "approval" in pending.json()["error"]

    carol_row = {"id": user_id(admin, "carol")}
    assert admin.patch(
        f"/ui/api/admin/users/{carol_row['id']}", json={"status": "active"}
    ).is_success
    assert visitor.post("/ui/api/login", json=carol).status_code == 200
    assert visitor.get("/ui/api/me").json()["user"]["role"] == "user"

    admin.patch("/ui/api/admin/settings", json={"approval": False})
    dave = make_client().post(
        "/ui/api/register", json={"username": "dave", "password": "daves secret"}
    )
    assert dave.json()["user"]["status"] == "active" and "csrf" in dave.json()


def test_disabling_a_user_ends_their_sessions(admin: TestClient, user: TestClient) -> None:
    assert user.get("/ui/api/me").status_code == 200
    bob = {"id": user_id(admin, USER[0])}
    assert admin.patch(f"/ui/api/admin/users/{bob['id']}", json={"status": "disabled"}).is_success
    assert user.get("/ui/api/me").status_code == 401
    again = user.post("/ui/api/login", json=_creds(USER))
    assert again.status_code == 403 and "disabled" in again.json()["error"]


def test_the_last_admin_stays(admin: TestClient, user: TestClient) -> None:
    me = admin.get("/ui/api/me").json()["user"]
    own = admin.patch(f"/ui/api/admin/users/{me['id']}", json={"role": "user"})
    assert own.status_code == 400
    assert admin.delete(f"/ui/api/admin/users/{me['id']}").status_code == 400
    bob = {"id": user_id(admin, USER[0])}
    promoted = admin.patch(f"/ui/api/admin/users/{bob['id']}", json={"role": "admin"})
    assert promoted.json()["role"] == "admin"
    assert user.get("/ui/api/admin/users").status_code == 200  # bob is an admin now
    assert admin.delete(f"/ui/api/admin/users/{bob['id']}").json() == {"ok": True}
    assert user.get("/ui/api/me").status_code == 401  # his sessions went with him


def test_single_user_mode_signs_in_as_the_local_admin(make_client: MakeClient) -> None:
    client = make_client(webui_auth=False)
    assert client.get("/ui/api/state").json()["auth"] is False
    me = client.get("/ui/api/me").json()
    assert me["user"]["username"] == "local" and me["user"]["role"] == "admin"
    assert me["auth"] is False
    client.headers["X-CSRF-Token"] = me["csrf"]
    assert client.get("/ui/api/admin/users").status_code == 200
    chat = client.post("/ui/api/chats", json={"title": "solo"}).json()
    assert client.get(f"/ui/api/chats/{chat['id']}").json()["title"] == "solo"


def test_migrations_upgrade_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    db = Database(path)
    assert db.version == len(MIGRATIONS)
    tables = {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "sessions", "chats", "settings", "api_keys"} <= tables
    db.write("INSERT INTO settings (key, value) VALUES ('k', '1')")
    db.close()
    again = Database(path)  # reopening applies nothing twice and keeps the data
    assert again.version == len(MIGRATIONS)
    assert again.one("SELECT value FROM settings WHERE key = 'k'")["value"] == "1"  # type: ignore[index]
    again.write(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    again.close()
    try:
        Database(path)
    except RuntimeError as exc:
        assert "newer corral" in str(exc)
    else:
        raise AssertionError("a database from a newer schema must not be opened")


def test_single_user_mode_with_api_keys_signs_in_only_loopback_pages(
    make_client: MakeClient,
) -> None:
    """Once keys guard the API, a password-less session would be a way around them: only a
    page on this machine gets one (TestClient's address is not a loopback one)."""
    client = make_client(webui_auth=False, api_keys="k1")
    response = client.get("/ui/api/me")
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert client.get("/api/tags").status_code == 401


def test_who_single_user_mode_signs_in(tmp_path: Path) -> None:
    from corral.config import Settings
    from corral.web import WebUI

    open_api = WebUI.create(Settings(home=tmp_path / "a", webui_auth=False))
    assert open_api.may_sign_in_locally("10.0.0.5")
    keyed = WebUI.create(Settings(home=tmp_path / "b", webui_auth=False, api_keys="k"))  # type: ignore[arg-type]
    assert keyed.may_sign_in_locally("127.0.0.1") and keyed.may_sign_in_locally("::1")
    assert not keyed.may_sign_in_locally("10.0.0.5")
    assert not keyed.may_sign_in_locally("testclient")

"""Who may create the first admin once API keys guard the server (an admin's session counts
as a full key, so a remote first visitor must not get one), single-user mode with keys, and
the sign-in rate limit per (address, name) pair."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.web.accounts import LoginLimiter, TooManyAttempts
from tests.web.conftest import ADMIN, MakeClient

CREDS = {"username": ADMIN[0], "password": ADMIN[1]}


def _take_over(client: TestClient) -> int:
    """A remote visitor's try at becoming admin and then using the API with the session."""
    response = client.post("/ui/api/setup", json=CREDS)
    if response.status_code == 200:
        client.headers["X-CSRF-Token"] = response.json()["csrf"]
    return response.status_code


def test_a_remote_visitor_cannot_create_the_admin_when_env_keys_are_set(
    make_client: MakeClient,
) -> None:
    remote = make_client(api_keys="k-secret")  # "testclient": not a loopback address
    assert remote.get("/ui/api/state").json()["setup_needs_key"] is True
    refused = remote.post("/ui/api/setup", json=CREDS)
    assert refused.status_code == 403
    message = refused.json()["error"]
    assert "http://localhost:11434/ui/" in message and "Authorization: Bearer" in message
    assert "set-cookie" not in refused.headers
    assert remote.get("/api/tags").status_code == 401  # still locked
    assert remote.post("/api/pull", json={"model": "x"}).status_code == 401

    lan = make_client(address="192.168.1.20", api_keys="k-secret")
    assert _take_over(lan) == 403
    wrong = lan.post("/ui/api/setup", json=CREDS, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert remote.get("/ui/api/state").json()["needs_setup"] is True  # nobody got in


def test_a_read_only_key_is_not_enough_to_create_the_admin(make_client: MakeClient) -> None:
    client = make_client(api_keys="read-only:k-read,k-full")
    read = client.post("/ui/api/setup", json=CREDS, headers={"Authorization": "Bearer k-read"})
    assert read.status_code == 403
    full = client.post("/ui/api/setup", json=CREDS, headers={"Authorization": "Bearer k-full"})
    assert full.status_code == 200 and full.json()["user"]["role"] == "admin"


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_a_request_through_a_local_proxy_is_not_local(make_client: MakeClient, header: str) -> None:
    """A reverse proxy on this machine connects from loopback for clients anywhere."""
    proxied = make_client(address="127.0.0.1", api_keys="k-secret")
    response = proxied.post("/ui/api/setup", json=CREDS, headers={header: "203.0.113.5"})
    assert response.status_code == 403
    single = make_client(address="127.0.0.1", webui_auth=False, api_keys="k-secret")
    assert single.get("/ui/api/me", headers={header: "203.0.113.5"}).status_code == 401


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1"])
def test_a_loopback_client_creates_the_admin_without_a_key(
    make_client: MakeClient, address: str
) -> None:
    local = make_client(address=address, api_keys="k-secret")
    response = local.post("/ui/api/setup", json=CREDS)
    assert response.status_code == 200 and response.json()["user"]["role"] == "admin"
    local.headers["X-CSRF-Token"] = response.json()["csrf"]
    assert local.get("/api/tags").status_code == 200  # the admin's session is a full key


def test_web_keys_also_guard_the_set_up(make_client: MakeClient, tmp_path: Path) -> None:
    """A key made in the UI (a server whose admin was later deleted from the database, say)
    guards the set-up like CORRAL_API_KEYS."""
    local = make_client(address="127.0.0.1")
    me = local.post("/ui/api/setup", json=CREDS).json()
    local.headers["X-CSRF-Token"] = me["csrf"]
    key = local.post("/ui/api/admin/keys", json={"name": "k"}).json()["key"]
    import sqlite3

    with sqlite3.connect(tmp_path / "home" / "corral.db") as db:
        db.execute("DELETE FROM users")
    remote = make_client()
    assert remote.get("/ui/api/state").json() == {
        "auth": True,
        "needs_setup": True,
        "signup": False,
        "setup_needs_key": True,
    }
    assert _take_over(remote) == 403
    bearer = {"Authorization": f"Bearer {key}"}
    assert remote.post("/ui/api/setup", json=CREDS, headers=bearer).status_code == 200


def test_without_keys_the_first_visitor_becomes_admin(make_client: MakeClient) -> None:
    """As documented in README: no key configured, the API is open anyway."""
    remote = make_client(address="192.168.1.20")
    assert remote.get("/ui/api/state").json()["setup_needs_key"] is False
    assert _take_over(remote) == 200


def test_single_user_mode_is_no_way_around_the_keys(make_client: MakeClient) -> None:
    remote = make_client(webui_auth=False, api_keys="k-secret")
    me = remote.get("/ui/api/me")
    assert me.status_code == 401 and "set-cookie" not in me.headers
    assert _take_over(remote) == 403  # nor through the set-up route
    login = remote.post("/ui/api/login", json={"username": "local", "password": "x" * 8})
    assert login.status_code == 401
    assert remote.get("/api/tags").status_code == 401
    assert remote.post("/api/pull", json={"model": "x"}).status_code == 401
    lan = make_client(address="10.1.2.3", webui_auth=False, api_keys="k-secret")
    assert lan.get("/ui/api/me").status_code == 401
    assert lan.get("/api/tags").status_code == 401

    local = make_client(address="127.0.0.1", webui_auth=False, api_keys="k-secret")
    signed_in = local.get("/ui/api/me")
    assert signed_in.status_code == 200 and signed_in.json()["user"]["username"] == "local"
    assert local.get("/api/tags").status_code == 200


# -- the sign-in rate limit ---------------------------------------------------------------------


def _guess(client: TestClient, username: str = "admin") -> int:
    body = {"username": username, "password": "guess-123"}
    return client.post("/ui/api/login", json=body).status_code


def test_guesses_from_one_address_do_not_lock_the_admin_out_elsewhere(
    admin: TestClient, make_client: MakeClient
) -> None:
    body = {"username": "bob", "password": "bobs password 1", "role": "user"}
    assert admin.post("/ui/api/admin/users", json=body).status_code == 200
    attacker = make_client(address="203.0.113.9")
    assert [_guess(attacker) for _ in range(5)] == [401] * 5
    locked = attacker.post("/ui/api/login", json=CREDS)  # even the right password
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "too many failed sign-ins" in locked.json()["error"]
    # the admin, elsewhere, still signs in; so does another user from the attacker's address
    assert make_client(address="198.51.100.7").post("/ui/api/login", json=CREDS).is_success
    same_ip = make_client(address="203.0.113.9")
    bob = same_ip.post("/ui/api/login", json={"username": "bob", "password": "bobs password 1"})
    assert bob.status_code == 200


def test_many_names_from_one_address_hit_the_per_address_limit(
    admin: TestClient, make_client: MakeClient
) -> None:
    sprayer = make_client(address="203.0.113.10")
    limit = LoginLimiter().ip_limit
    statuses = [_guess(sprayer, f"user{i // 4}") for i in range(limit)]  # 4 per name
    assert statuses == [401] * limit
    blocked = sprayer.post("/ui/api/login", json=CREDS)
    assert blocked.status_code == 429 and "retry-after" in blocked.headers
    assert make_client(address="198.51.100.8").post("/ui/api/login", json=CREDS).is_success


def test_the_limiter_forgets_after_the_window_and_on_success() -> None:
    now = [1000.0]
    limiter = LoginLimiter(limit=3, ip_limit=5, window=60, clock=lambda: now[0])
    for _ in range(3):
        limiter.failed("1.2.3.4", "Admin")
    with pytest.raises(TooManyAttempts) as caught:
        limiter.check("1.2.3.4", " admin ")  # names compare trimmed and case-blind
    assert 1 <= caught.value.retry_after <= 61
    limiter.check("5.6.7.8", "admin")  # another address
    limiter.check("1.2.3.4", "bob")  # another name from the same address
    now[0] += 61
    limiter.check("1.2.3.4", "admin")  # the window passed
    limiter.failed("1.2.3.4", "admin")
    limiter.failed("1.2.3.4", "admin")
    limiter.succeeded("1.2.3.4", "admin")
    limiter.failed("1.2.3.4", "admin")
    limiter.check("1.2.3.4", "admin")  # the success cleared the pair
    limiter.failed("1.2.3.4", "carol")
    limiter.check("1.2.3.4", "dave")  # 4 in the window from the address
    limiter.failed("1.2.3.4", "erin")
    with pytest.raises(TooManyAttempts):  # 5 from the address in the window, whatever names
        limiter.check("1.2.3.4", "dave")

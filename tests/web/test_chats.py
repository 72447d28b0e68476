"""Chats through the UI's API: per user, CSRF-protected, searchable."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.web.conftest import MakeClient


def test_chat_lifecycle(admin: TestClient) -> None:
    created = admin.post(
        "/ui/api/chats",
        json={
            "title": "Rust question",
            "model": "smollm2:135m",
            "system": "Answer briefly.",
            "options": {"temperature": 0.2, "num_ctx": 2048},
            "messages": [{"role": "user", "content": "What is a borrow checker?"}],
        },
    ).json()
    chat_id = created["id"]
    assert created["system"] == "Answer briefly." and created["options"]["num_ctx"] == 2048

    answer = {"role": "assistant", "content": "It checks **borrows**.", "meta": {"eval_count": 5}}
    patched = admin.patch(
        f"/ui/api/chats/{chat_id}",
        json={"messages": [*created["messages"], answer]},
    ).json()
    assert patched["messages"][-1] == answer
    assert patched["title"] == "Rust question"  # a partial update keeps the rest

    assert admin.patch(f"/ui/api/chats/{chat_id}", json={"title": "Borrowing"}).is_success
    listed = admin.get("/ui/api/chats").json()["chats"]
    assert [c["title"] for c in listed] == ["Borrowing"]

    assert admin.delete(f"/ui/api/chats/{chat_id}").json() == {"ok": True}
    assert admin.get(f"/ui/api/chats/{chat_id}").status_code == 404
    assert admin.delete(f"/ui/api/chats/{chat_id}").status_code == 404


def test_search_matches_titles_and_messages(admin: TestClient) -> None:
    admin.post("/ui/api/chats", json={"title": "Cooking", "messages": []})
    admin.post(
        "/ui/api/chats",
        json={"title": "Misc", "messages": [{"role": "user", "content": "100% rye bread?"}]},
    )
    admin.post("/ui/api/chats", json={"title": "under_score"})

    def titles(q: str) -> list[str]:
        return sorted(
            c["title"] for c in admin.get("/ui/api/chats", params={"q": q}).json()["chats"]
        )

    assert titles("cook") == ["Cooking"]
    assert titles("RYE") == ["Misc"]
    assert titles("100%") == ["Misc"]  # % is matched literally, not as a wildcard
    assert titles("d_r") == []  # and so is _ ("under" would match a wildcard)
    assert titles("r_s") == ["under_score"]
    assert titles("") == ["Cooking", "Misc", "under_score"]


def test_chats_are_private_to_their_owner(admin: TestClient, user: TestClient) -> None:
    mine = admin.post("/ui/api/chats", json={"title": "admin's"}).json()["id"]
    assert user.get("/ui/api/chats").json()["chats"] == []
    assert user.get(f"/ui/api/chats/{mine}").status_code == 404
    assert user.patch(f"/ui/api/chats/{mine}", json={"title": "x"}).status_code == 404
    assert user.delete(f"/ui/api/chats/{mine}").status_code == 404
    assert admin.get(f"/ui/api/chats/{mine}").json()["title"] == "admin's"


def test_writes_need_the_sessions_csrf_token(admin: TestClient, make_client: MakeClient) -> None:
    token = admin.headers.pop("X-CSRF-Token")
    refused = admin.post("/ui/api/chats", json={"title": "x"})
    assert refused.status_code == 403
    wrong = admin.post("/ui/api/chats", json={"title": "x"}, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    assert admin.get("/ui/api/chats").json()["chats"] == []  # reads need no token
    ok = admin.post("/ui/api/chats", json={"title": "x"}, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200
    assert make_client().get("/ui/api/chats").status_code == 401


def test_invalid_messages_are_refused(admin: TestClient) -> None:
    response = admin.post("/ui/api/chats", json={"messages": [{"role": "hacker", "content": ""}]})
    assert response.status_code == 400
    assert "messages" in response.json()["error"]

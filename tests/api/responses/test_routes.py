import json
from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.openai.conftest import ScriptedFactory
from tests.api.openai.conftest import tools_allowed as tools_allowed
from tests.api.openai.test_routes import MODEL, scripted
from tests.fakes import FakeFactory


def test_create_then_follow_up_carries_the_earlier_turn(
    v1: TestClient, factory: FakeFactory
) -> None:
    first = v1.post("/v1/responses", json={"model": MODEL, "input": "my name is Ada"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["id"].startswith("resp_") and body["object"] == "response"
    assert body["output"][0]["type"] == "message"
    second = v1.post(
        "/v1/responses",
        json={"model": MODEL, "input": "my name?", "previous_response_id": body["id"]},
    )
    assert second.status_code == 200, second.text
    # the engine saw the stored turn (user + assistant answer) before the new input
    sent = factory.engines[0].calls[-1].messages or []
    assert [m["content"] for m in sent] == ["my name is Ada", "Hello there!", "my name?"]


def test_get_and_delete(v1: TestClient) -> None:
    ident = v1.post("/v1/responses", json={"model": MODEL, "input": "hi"}).json()["id"]
    assert v1.get(f"/v1/responses/{ident}").json()["id"] == ident
    assert v1.delete(f"/v1/responses/{ident}").json()["deleted"] is True
    missing = v1.get(f"/v1/responses/{ident}")
    assert missing.status_code == 404 and ident in missing.json()["error"]["message"]


def test_input_items_list_what_the_model_read(v1: TestClient) -> None:
    first = v1.post("/v1/responses", json={"model": MODEL, "input": "my name is Ada"}).json()
    body = {"model": MODEL, "input": "my name?", "previous_response_id": first["id"]}
    second = v1.post("/v1/responses", json=body).json()
    listed = v1.get(f"/v1/responses/{second['id']}/input_items").json()
    assert listed["object"] == "list" and listed["has_more"] is False
    texts = [item["content"][0]["text"] if isinstance(item["content"], list) else item["content"]
             for item in listed["data"]]  # fmt: skip
    assert texts == ["my name?", "Hello there!", "my name is Ada"]  # newest first by default
    asc = v1.get(f"/v1/responses/{second['id']}/input_items", params={"order": "asc", "limit": 1})
    page = asc.json()
    assert page["has_more"] is True and len(page["data"]) == 1
    rest = v1.get(
        f"/v1/responses/{second['id']}/input_items",
        params={"order": "asc", "after": page["last_id"]},
    ).json()
    assert len(rest["data"]) == 2 and rest["has_more"] is False
    bad = v1.get(f"/v1/responses/{second['id']}/input_items", params={"after": "nope"})
    assert bad.status_code == 400 and "nope" in bad.json()["error"]["message"]
    assert v1.get("/v1/responses/resp_nope/input_items").status_code == 404


def test_unknown_previous_id_is_404_naming_it(v1: TestClient) -> None:
    r = v1.post(
        "/v1/responses", json={"model": MODEL, "input": "x", "previous_response_id": "resp_nope"}
    )
    assert r.status_code == 404 and "resp_nope" in r.json()["error"]["message"]


def test_builtin_tool_is_400_naming_it(v1: TestClient) -> None:
    r = v1.post(
        "/v1/responses", json={"model": MODEL, "input": "x", "tools": [{"type": "web_search"}]}
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "tools[0].type"


def test_function_call_round_trip(seeded_models: Path, tmp_path: Path, tools_allowed: None) -> None:
    factory = ScriptedFactory(
        tool_calls=[{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        engine_kwargs={"words": []},
    )
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    with scripted(seeded_models, tmp_path, factory) as client:
        body = client.post(
            "/v1/responses", json={"model": MODEL, "input": "weather?", "tools": [tool]}
        ).json()
        [call] = [o for o in body["output"] if o["type"] == "function_call"]
        assert (call["name"], json.loads(call["arguments"])) == ("get_weather", {"city": "Paris"})
        follow = client.post(
            "/v1/responses",
            json={
                "model": MODEL,
                "previous_response_id": body["id"],
                "tools": [tool],
                "input": [
                    {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
                ],
            },
        )
    assert follow.status_code == 200, follow.text
    sent = factory.engines[0].calls[-1].messages or []
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[-1]["content"] == "sunny"


def test_stream_events(v1: TestClient) -> None:
    r = v1.post("/v1/responses", json={"model": MODEL, "input": "hi", "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(b.split("data: ", 1)[1]) for b in r.text.split("\n\n") if b]
    kinds = [e["type"] for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "Hello there!"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == text

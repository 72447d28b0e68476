"""The router over two small stand-in replicas (real HTTP): fan-out of /api/pull and
/api/tags, a pull that fails on one replica, and the model-aware pick."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.testclient import TestClient

from corral.config import Settings
from corral.router.app import Router, create_router_app
from corral.router.keys import RouteKey, route_key
from tests.live import serve_in_thread


def replica(name: str, loaded: list[str], pulls: list[str], fail_pull: bool = False) -> FastAPI:
    app = FastAPI()

    @app.get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/api/ps")
    async def ps() -> dict[str, Any]:
        return {"models": [{"name": m} for m in loaded]}

    @app.get("/api/tags")
    async def tags() -> dict[str, Any]:
        return {"models": [{"name": "shared:latest"}, {"name": f"{name}-only:latest"}]}

    @app.post("/api/pull")
    async def pull(body: dict[str, Any]) -> JSONResponse:
        pulls.append(f"{name}:{body['model']}:{body['stream']}")
        if fail_pull:
            return JSONResponse({"error": "disk full"}, status_code=500)
        return JSONResponse({"status": "success"})

    @app.post("/api/chat")
    async def chat() -> dict[str, str]:
        return {"served_by": name}

    return app


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def router(stack: ExitStack, *apps: FastAPI) -> TestClient:
    urls = [stack.enter_context(serve_in_thread(app)) for app in apps]
    return stack.enter_context(TestClient(create_router_app(Settings(replicas=urls))))


def test_pull_and_tags_fan_out(stack: ExitStack) -> None:
    pulls: list[str] = []
    client = router(stack, replica("a", [], pulls), replica("b", [], pulls))
    answer = client.post("/api/pull", json={"model": "m:1", "stream": False})
    assert answer.status_code == 200 and answer.json() == {"status": "success"}
    assert sorted(pulls) == ["a:m:1:False", "b:m:1:False"]
    streamed = client.post("/api/pull", json={"model": "m:2"})
    assert streamed.text.strip() == '{"status": "success"}'
    names = [m["name"] for m in client.get("/api/tags").json()["models"]]
    assert sorted(names) == ["a-only:latest", "b-only:latest", "shared:latest"]
    assert client.get("/health/ready").json() == {"status": "ready", "replicas": 2}
    ui = client.get("/ui/")
    assert ui.status_code == 404 and "Open the web UI on one of its replicas" in ui.text


def test_a_failed_pull_names_the_replica(stack: ExitStack) -> None:
    pulls: list[str] = []
    client = router(stack, replica("a", [], pulls), replica("b", [], pulls, fail_pull=True))
    answer = client.post("/api/pull", json={"model": "m", "stream": False})
    assert answer.status_code == 500 and "disk full" in answer.json()["error"]
    assert client.post("/api/pull", content=b"{nope").status_code == 400


def test_a_request_goes_where_its_model_is_loaded(stack: ExitStack) -> None:
    client = router(stack, replica("a", [], []), replica("b", ["big:7b"], []))
    for i in range(10):  # whatever the conversation, the loaded replica wins
        body = {"model": "big:7b", "messages": [{"role": "user", "content": f"chat {i}"}]}
        assert client.post("/api/chat", json=body).json() == {"served_by": "b"}
    served = {
        client.post(
            "/api/chat", json={"model": "other", "messages": [{"role": "user", "content": f"{i}"}]}
        ).json()["served_by"]
        for i in range(20)
    }
    assert served == {"a", "b"}  # a model loaded nowhere: spread by the ring


def store_replica(models: set[str], fail_create: bool = False) -> FastAPI:
    """A stand-in store: delete answers 404 for a model it lacks, as corral does."""
    app = replica("s", [], [])

    @app.delete("/api/delete")
    async def delete(body: dict[str, Any]) -> Response:
        if body["model"] not in models:
            return JSONResponse({"error": f"model {body['model']!r} not found"}, status_code=404)
        models.discard(body["model"])
        return Response(status_code=200)

    @app.post("/api/create")
    async def create(body: dict[str, Any]) -> JSONResponse:
        if fail_create:
            return JSONResponse({"error": "no space left on device"}, status_code=500)
        models.add(body["model"])
        return JSONResponse({"status": "success"})

    return app


def test_a_delete_succeeds_where_any_replica_had_the_model(stack: ExitStack) -> None:
    first, second = {"m:1"}, set[str]()
    client = router(stack, store_replica(first), store_replica(second))
    assert client.request("DELETE", "/api/delete", json={"model": "m:1"}).status_code == 200
    assert first == set()
    gone = client.request("DELETE", "/api/delete", json={"model": "m:1"})
    assert gone.status_code == 404 and "not found" in gone.json()["error"]
    assert client.request("DELETE", "/api/delete", content=b"[1]").status_code == 400


def test_a_create_that_fails_on_one_replica_says_which(stack: ExitStack) -> None:
    first, second = set[str](), set[str]()
    client = router(stack, store_replica(first), store_replica(second, fail_create=True))
    answer = client.post("/api/create", json={"model": "c:1", "from": "m:1"})
    assert answer.status_code == 500 and "no space left" in answer.json()["error"]
    assert first == {"c:1"}  # the replica that could, did; the error tells the user to retry


def test_new_conversations_spread_and_each_keeps_its_home() -> None:
    """Eight first turns at once land four and four (CHWBL alone allows five and three);
    every later turn goes back where its first went, while that replica is within bound."""
    urls = ["http://a:1", "http://b:1"]
    chooser = Router(Settings(replicas=urls), httpx.AsyncClient())
    for replica in chooser.replicas.replicas.values():
        replica.healthy = True

    def key(i: int, answered: bool = False) -> RouteKey:
        messages = [{"role": "user", "content": f"Story {i}"}]
        if answered:
            messages += [{"role": "assistant", "content": "..."}, {"role": "user", "content": "?"}]
        return route_key(json.dumps({"model": "m", "messages": messages}).encode())

    idle = dict.fromkeys(urls, 0)
    same_home = [  # eight conversations that all hash to replica a: CHWBL's worst case
        i for i in range(200) if chooser.ring.pick(f"m:latest\n{key(i).prefix}", idle) == urls[0]
    ][:8]
    homes = {}
    for i in same_home:  # all in flight together
        replica = chooser.choose(key(i), set())
        assert replica is not None
        replica.in_flight += 1
        homes[i] = replica.url
    assert sorted(Counter(homes.values()).values()) == [4, 4]
    for replica in chooser.replicas.replicas.values():
        replica.in_flight = 0
    for i in same_home:
        second = chooser.choose(key(i, answered=True), set())
        assert second is not None and second.url == homes[i]


def slow_replica(name: str) -> FastAPI:
    """Answers a chat only after a while, as a non-streamed generation does."""
    app = replica(name, [], [])
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", "") != "/api/chat"]

    @app.post("/api/chat")
    async def chat() -> dict[str, str]:
        await asyncio.sleep(0.5)
        return {"served_by": name}

    return app


def test_a_request_counts_as_load_before_its_answer_starts(stack: ExitStack) -> None:
    client = router(stack, slow_replica("a"), slow_replica("b"))
    chooser: Router = client.app.state.router  # type: ignore[attr-defined]
    idle = dict.fromkeys(chooser.replicas.replicas, 0)

    def body(i: int) -> dict[str, Any]:
        return {"model": "m", "messages": [{"role": "user", "content": f"Story {i}"}]}

    home = chooser.ring.pick(f"m:latest\n{route_key(json.dumps(body(0)).encode()).prefix}", idle)
    same = [
        i for i in range(200)
        if chooser.ring.pick(f"m:latest\n{route_key(json.dumps(body(i)).encode()).prefix}", idle)
        == home
    ][:2]  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        served = list(pool.map(lambda i: client.post("/api/chat", json=body(i)).json(), same))
    assert {s["served_by"] for s in served} == {"a", "b"}


def responses_replica(name: str, stored: dict[str, str], asked: list[str]) -> FastAPI:
    """A stand-in Responses store: a response lives on the replica that made it."""
    app = replica(name, [], [])

    @app.post("/v1/responses")
    async def create(body: dict[str, Any]) -> JSONResponse:
        previous = body.get("previous_response_id")
        asked.append(f"{name}:POST:{previous}")
        if previous is not None and previous not in stored:
            return JSONResponse({"error": {"message": "not found"}}, status_code=404)
        ident = f"resp_{name}{len(stored)}"
        stored[ident] = name
        return JSONResponse({"id": ident, "object": "response", "served_by": name})

    @app.api_route("/v1/responses/{ident}", methods=["GET", "DELETE"])
    async def one(ident: str) -> JSONResponse:
        asked.append(f"{name}:GET:{ident}")
        if ident not in stored:
            return JSONResponse({"error": {"message": "not found"}}, status_code=404)
        return JSONResponse({"id": ident, "served_by": name})

    return app


def test_a_stored_response_is_found_where_it_was_stored(stack: ExitStack) -> None:
    stored_a: dict[str, str] = {}
    stored_b: dict[str, str] = {}
    asked: list[str] = []
    urls = [
        stack.enter_context(serve_in_thread(responses_replica(n, s, asked)))
        for n, s in (("a", stored_a), ("b", stored_b))
    ]
    first = stack.enter_context(TestClient(create_router_app(Settings(replicas=urls))))
    made = [first.post("/v1/responses", json={"model": "m", "input": f"{i}"}).json()
            for i in range(6)]  # fmt: skip
    assert {m["served_by"] for m in made} == {"a", "b"}
    for m in made:  # GET goes to the replica that stored it, known from the answer
        assert first.get(f"/v1/responses/{m['id']}").json()["served_by"] == m["served_by"]
    # a second router (or this one restarted) has seen none of them: it looks replica by
    # replica, and a 404 from the wrong one is not the answer
    second = stack.enter_context(TestClient(create_router_app(Settings(replicas=urls))))
    for m in made:
        assert second.get(f"/v1/responses/{m['id']}").json()["served_by"] == m["served_by"]
        body = {"model": "m", "input": "again", "previous_response_id": m["id"]}
        assert second.post("/v1/responses", json=body).json()["served_by"] == m["served_by"]
    missing = second.get("/v1/responses/resp_nowhere")
    assert missing.status_code == 404
    assert sorted(a for a in asked if "nowhere" in a) == [
        "a:GET:resp_nowhere",
        "b:GET:resp_nowhere",
    ]

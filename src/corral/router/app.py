"""The router: forwards ``/api/*`` and ``/v1/*`` to a replica chosen per request, streams
the answer back unchanged, fans ``/api/tags`` and ``/api/ps`` out to all and merges them, and
mirrors store changes (pull, create, delete, copy, blob uploads) to every replica.

Choice, in order: a Responses request continuing an earlier response, and a GET or DELETE of
a stored response, goes where that one was stored (one the router has not seen is asked of
each replica in turn until one has it); else among the healthy replicas, those with the
model loaded (if any); among them, the replica that served this conversation's last turn
(keyed by the model and the prompt's start) while its load is within the bound; a
conversation's first turn, which no replica can have cached, goes to the least loaded;
anything else to the consistent-hash-with-bounded-load pick (see :mod:`corral.router.ring`),
which also sends a conversation home after a router restart or through another router. The
load is the router's requests in flight. A replica that refuses the connection is marked
down and the request goes to the next pick: nothing is sent twice, since nothing reached the
first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from corral import __version__
from corral.config import Settings
from corral.router.keys import RouteKey, route_key
from corral.router.replicas import Replica, ReplicaSet
from corral.router.ring import HashRing

__all__ = ["create_router_app"]

_CREDENTIALS = {"authorization", "x-api-key", "cookie"}
_HOP_HEADERS = {"host", "content-length", "connection", "keep-alive", "transfer-encoding"}
_RESPONSE_ID = re.compile(rb'"id"\s*:\s*"(resp_[A-Za-z0-9]+)"')
_RESPONSE_PATH = re.compile(r"^/v1/responses/(resp_[A-Za-z0-9]+)(?:/|$)")  # GET, DELETE, items
_REMEMBERED = 10_000  # response ids and conversation homes, least recently used dropped
# store changes every replica makes (see ``mirror``): which take JSON, and which stream
# progress (the router asks each replica for one answer and streams the outcome)
_JSON_MIRRORS = {"/api/pull", "/api/create", "/api/delete", "/api/copy"}
_STREAMED_MIRRORS = {"/api/pull", "/api/create"}


def _qualified(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _error(path: str, status: int, message: str) -> JSONResponse:
    """The error in the shape of the surface the client called."""
    if path.startswith("/v1/messages"):
        body: dict[str, Any] = {
            "type": "error", "error": {"type": "overloaded_error", "message": message}
        }  # fmt: skip
    elif path.startswith("/v1/"):
        body = {"error": {"message": message, "type": "server_error", "code": None}}
    else:
        body = {"error": message}
    return JSONResponse(body, status_code=status)


def _message(response: httpx.Response) -> str:
    """A replica's error message, whatever shape its body has."""
    try:
        body = response.json()
    except ValueError:
        return response.text or f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else response.text


def _success_status(results: list[tuple[Replica, httpx.Response | Exception]]) -> int:
    """200 when every replica said 200, else the first success status (201 for a new blob)."""
    codes = [
        r.status_code for _, r in results if isinstance(r, httpx.Response) and r.status_code < 300
    ]
    return 200 if all(c == 200 for c in codes) else next(c for c in codes if c != 200)


def _cut_short(path: str, content_type: str, message: str) -> bytes:
    """The last event of a stream whose replica went away, in the surface's format."""
    if "ndjson" in content_type:
        return json.dumps({"error": message}).encode() + b"\n"
    if "event-stream" in content_type:
        if path.startswith("/v1/messages"):
            body = {"type": "error", "error": {"type": "api_error", "message": message}}
            return f"event: error\ndata: {json.dumps(body)}\n\n".encode()
        body = {"error": {"message": message, "type": "server_error", "code": None}}
        return f"data: {json.dumps(body)}\n\n".encode()
    return b""  # a plain body: the cut itself is all a client can be told


class _ReplicaGauges(Collector):
    def __init__(self, replicas: ReplicaSet) -> None:
        self._replicas = replicas

    def collect(self) -> Any:
        up = GaugeMetricFamily(
            "corral_router_replica_up", "1 when the replica is ready", labels=["replica"]
        )
        busy = GaugeMetricFamily(
            "corral_router_replica_in_flight",
            "Requests sent and not yet answered",
            labels=["replica"],
        )
        for replica in self._replicas.replicas.values():
            up.add_metric([replica.url], 1.0 if replica.healthy else 0.0)
            busy.add_metric([replica.url], replica.in_flight)
        return [up, busy]


class Router:
    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.client = client
        self.replicas = ReplicaSet(settings.replicas, client, settings.router_health_interval)
        self.ring = HashRing(list(self.replicas.replicas))
        self.responses: OrderedDict[str, str] = OrderedDict()  # response id -> replica url
        self.homes: OrderedDict[str, str] = OrderedDict()  # routing key -> last replica
        self.round_robin = settings.router_policy == "round-robin"
        self._turn = 0
        self.registry = CollectorRegistry()
        self.registry.register(_ReplicaGauges(self.replicas))
        self.routed = Counter(
            "corral_router_requests", "Requests forwarded, by replica", ["replica"],
            registry=self.registry,
        )  # fmt: skip

    def choose(self, key: RouteKey, exclude: set[str]) -> Replica | None:
        healthy = [r for r in self.replicas.healthy() if r.url not in exclude]
        if not healthy:
            return None
        if self.round_robin and not key.previous_response:
            self._turn += 1
            return healthy[self._turn % len(healthy)]
        if key.previous_response:
            owner = self.responses.get(key.previous_response)
            match = next((r for r in healthy if r.url == owner), None)
            if match is not None:
                return match
        model = _qualified(key.model) if key.model else ""
        pool = [r for r in healthy if model and model in r.loaded] or healthy
        load = {r.url: r.in_flight for r in pool}
        among = list(load)
        ring_key = f"{model}\n{key.prefix}"
        home = self.homes.get(ring_key)
        if home in load and load[home] + 1 <= self.ring.bound(load, among):
            url = home  # where this conversation's earlier turns are cached
        elif home is None and key.first_turn:
            url = self.ring.least_loaded(ring_key, load, among)  # nothing cached to keep
        else:
            url = self.ring.pick(ring_key, load, among)  # CHWBL: home on the ring, bounded
        self._remember(self.homes, ring_key, url)
        return self.replicas.replicas[url]

    def _others(self, tried: set[str]) -> bool:
        return any(r.url not in tried for r in self.replicas.healthy())

    @staticmethod
    def _remember(table: OrderedDict[str, str], key: str, url: str) -> None:
        table[key] = url
        table.move_to_end(key)
        while len(table) > _REMEMBERED:
            table.popitem(last=False)

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        if stored := _RESPONSE_PATH.match(path):
            key = RouteKey("", "", previous_response=stored.group(1))
        elif request.method in ("POST", "PUT"):
            key = route_key(body)
        else:
            key = RouteKey("", "")
        # a stored response the router has not seen (it restarted, or another router served
        # it) is on one replica only: a 404 from another means "not here", so ask the next
        lookup = None if key.previous_response in self.responses else key.previous_response
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        query = request.url.query
        tried: set[str] = set()
        while True:
            replica = self.choose(key, tried)
            if replica is None:
                return _error(path, 503, "no corral replica is available; try again shortly")
            tried.add(replica.url)
            url = f"{replica.url}{path}" + (f"?{query}" if query else "")
            outgoing = self.client.build_request(request.method, url, headers=headers, content=body)
            # counted from the moment it is chosen: a non-streamed answer sends its headers
            # only when it is done, and requests arriving meanwhile must see this one
            replica.in_flight += 1
            try:
                upstream = await self.client.send(outgoing, stream=True)
            except httpx.HTTPError as exc:
                replica.in_flight -= 1
                self.replicas.mark_down(replica, type(exc).__name__)
                if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                    continue  # nothing reached it: the next pick gets the request
                # it may have started the work: not sent twice, the client decides
                return _error(path, 502, f"replica {replica.url} failed before answering: {exc}")
            self.routed.labels(replica.url).inc()
            if lookup and upstream.status_code == 404 and self._others(tried):
                replica.in_flight -= 1
                await upstream.aclose()  # nothing ran there: it does not hold that response
                continue
            if lookup and upstream.status_code < 300:
                self._remember(self.responses, lookup, replica.url)
            return StreamingResponse(
                self._relay(upstream, replica, path),
                status_code=upstream.status_code,
                headers={
                    k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS
                },
            )

    async def _relay(
        self, upstream: httpx.Response, replica: Replica, path: str
    ) -> AsyncIterator[bytes]:
        sniff = path.startswith("/v1/responses")  # learn where each response is stored
        sniffed = b""
        try:
            async for chunk in upstream.aiter_raw():
                if sniff and len(sniffed) < 8192:
                    sniffed += chunk
                    if found := _RESPONSE_ID.search(sniffed):
                        self._remember(self.responses, found.group(1).decode(), replica.url)
                        sniff = False
                yield chunk
        except httpx.HTTPError:
            # The replica died mid-answer: say so in the stream's own format, as a replica
            # does when its engine dies, so the client never waits on a stream cut short.
            self.replicas.mark_down(replica, "connection lost mid-answer")
            kind = upstream.headers.get("content-type", "")
            yield _cut_short(path, kind, f"replica {replica.url} stopped mid-answer")
        finally:
            replica.in_flight -= 1
            await upstream.aclose()

    async def fan_out(
        self, request: Request, path: str, body: bytes | None = None
    ) -> list[tuple[Replica, httpx.Response | Exception]]:
        """``path`` on every healthy replica at once, with the client's credentials."""
        headers = {k: v for k, v in request.headers.items() if k.lower() in _CREDENTIALS}
        if body is not None:
            headers["content-type"] = request.headers.get("content-type", "application/json")
        method = request.method
        replicas = self.replicas.healthy()

        async def one(replica: Replica) -> httpx.Response | Exception:
            try:
                return await self.client.request(
                    method, f"{replica.url}{path}", content=body, headers=headers, timeout=None
                )
            except httpx.HTTPError as exc:
                return exc

        results = await asyncio.gather(*(one(r) for r in replicas))
        return list(zip(replicas, results, strict=True))


def _router(request: Request) -> Router:
    router: Router = request.app.state.router
    return router


def create_router_app(settings: Settings, *, client: httpx.AsyncClient | None = None) -> FastAPI:
    """The router for ``settings.replicas``; tests may pass their own client."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = client or httpx.AsyncClient(timeout=httpx.Timeout(None, connect=2.0), trust_env=False)
        router = Router(settings, own)
        app.state.router = router
        await router.replicas.probe_all()
        watcher = asyncio.create_task(router.replicas.watch())
        try:
            yield
        finally:
            watcher.cancel()
            if client is None:
                await own.aclose()

    app = FastAPI(title="corral router", version=__version__, lifespan=lifespan)

    @app.get("/", response_class=PlainTextResponse)
    @app.head("/", response_class=PlainTextResponse, include_in_schema=False)
    async def root() -> str:
        return "corral is running"  # what Ollama clients probe; the router answers for all

    @app.get("/ui{rest:path}", response_class=PlainTextResponse, include_in_schema=False)
    async def no_web_ui(rest: str) -> PlainTextResponse:
        # the UI's accounts and chats live in one server's database: not spread over replicas
        return PlainTextResponse(
            "this is a corral router: it serves /api and /v1 only. Open the web UI on one "
            "of its replicas, or point Open WebUI at this address.",
            status_code=404,
        )

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/health/ready")
    async def ready(request: Request) -> JSONResponse:
        up = len(_router(request).replicas.healthy())
        status = 200 if up else 503
        return JSONResponse(
            {"status": "ready" if up else "no replica", "replicas": up}, status_code=status
        )

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(_router(request).registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/tags")
    @app.get("/api/ps")
    async def union(request: Request) -> JSONResponse:
        """Every model any replica has (or has loaded), once."""
        merged: dict[str, Any] = {}
        for _, result in await _router(request).fan_out(request, request.url.path):
            if isinstance(result, httpx.Response) and result.status_code == 200:
                for model in result.json().get("models", []):
                    merged.setdefault(model.get("name"), model)
        return JSONResponse({"models": list(merged.values())})

    async def mirror(request: Request, path: str, *, some_may_lack: bool) -> Response:
        """A store change every replica makes; success only when all did (or, where
        ``some_may_lack``, when each did or never had the model and at least one did)."""
        body = await request.body()
        wants_stream = False
        if path in _JSON_MIRRORS:
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                return _error("/api", 400, "the request body is not JSON")
            if not isinstance(data, dict):
                return _error("/api", 400, "the request body must be a JSON object")
            wants_stream = path in _STREAMED_MIRRORS and data.get("stream", True) is not False
            if path in _STREAMED_MIRRORS:
                body = json.dumps({**data, "stream": False}).encode()
        results = await _router(request).fan_out(request, path, body or None)
        if not results:
            return _error("/api", 503, "no corral replica is available; try again shortly")
        missing: list[httpx.Response] = []
        for replica, result in results:
            if isinstance(result, Exception):
                return _error("/api", 502, f"{path} on {replica.url} failed: {result}")
            if result.status_code == 404 and some_may_lack:
                missing.append(result)
            elif result.status_code >= 300:
                return _error("/api", result.status_code, f"{path} on {replica.url}: "
                              f"{_message(result)}")  # fmt: skip
        if len(missing) == len(results):
            return _error("/api", 404, _message(missing[0]))
        if path not in _STREAMED_MIRRORS:  # delete, copy and blobs answer with a status
            return Response(status_code=_success_status(results))
        done = {"status": "success"}
        if wants_stream:
            return Response(json.dumps(done) + "\n", media_type="application/x-ndjson")
        return JSONResponse(done)

    @app.post("/api/pull")
    async def pull(request: Request) -> Response:
        return await mirror(request, "/api/pull", some_may_lack=False)

    @app.post("/api/create")
    async def create(request: Request) -> Response:
        return await mirror(request, "/api/create", some_may_lack=False)

    @app.delete("/api/delete")
    async def delete(request: Request) -> Response:
        return await mirror(request, "/api/delete", some_may_lack=True)

    @app.post("/api/copy")
    async def copy(request: Request) -> Response:
        return await mirror(request, "/api/copy", some_may_lack=True)

    @app.api_route("/api/blobs/{digest}", methods=["HEAD", "POST"])
    async def blob(request: Request, digest: str) -> Response:
        """A blob for a later create: every replica needs it, so HEAD says 200 only when all
        have it, and POST stores it on all."""
        return await mirror(request, f"/api/blobs/{digest}", some_may_lack=False)

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "HEAD"])
    @app.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "HEAD"])
    async def forward(request: Request, rest: str) -> Response:
        return await _router(request).forward(request)

    return app

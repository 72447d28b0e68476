"""``GET /metrics``: Prometheus text, from a registry each app builds for itself.

Nothing here uses prometheus-client's global default registry, so several apps in one
process (tests) keep separate counts. :class:`Metrics` is the app's
:class:`~corral.observe.Observer`: the factory hands it to the service, the scheduler and
the registry service, which call its hooks; requests are counted by an ASGI middleware that
labels them with the route *template* (``/api/chat``, ``/api/blobs/{digest}``), never the raw
path, so label sets stay bounded. Loaded models, their memory and the queue are read from
the scheduler at scrape time.

Metric names (counters get ``_total`` in the text format)::

    corral_http_requests_total{method,route,status}
    corral_http_request_duration_seconds{method,route}     histogram, to the last byte
    corral_time_to_first_token_seconds{model}              histogram, request start -> token
    corral_prompt_tokens_total{model}, corral_generated_tokens_total{model}
    corral_generation_tokens_per_second{model}             histogram, one value per request
    corral_draft_tokens_total{model}, corral_draft_accepted_tokens_total{model}
                                                           speculative decoding's guesses
    corral_models_loaded, corral_model_memory_bytes{model}, corral_queue_depth,
    corral_requests_active
    corral_requests_queued, corral_requests_running, corral_kv_cache_utilization
                                                           Inference Extension gauges
    corral_engine_starts_total{model}, corral_engine_crashes_total{model}
    corral_pull_bytes_total, corral_pulls_total{result}
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.observe import Observer

if TYPE_CHECKING:
    from corral.core.scheduler import Scheduler

__all__ = ["Metrics", "MetricsMiddleware", "install_metrics", "router"]

UNMATCHED = "<unmatched>"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
_RATE_BUCKETS = (1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 500, 1000)


class _SchedulerCollector(Collector):
    """Gauges read from the scheduler when Prometheus scrapes."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def collect(self) -> Iterable[Metric]:
        running = self._scheduler.running()
        loaded = GaugeMetricFamily("corral_models_loaded", "Engines (loaded models) running")
        loaded.add_metric([], len(running))
        memory = GaugeMetricFamily(
            "corral_model_memory_bytes",
            "Memory of each loaded model as /api/ps reports it (estimate, else file size)",
            labels=["model"],
        )
        sizes: dict[str, int] = {}
        for engine in running:
            name = engine.model.name.display
            sizes[name] = sizes.get(name, 0) + engine.size
        for name, size in sorted(sizes.items()):
            memory.add_metric([name], size)
        queue = GaugeMetricFamily(
            "corral_queue_depth", "Requests waiting for a model to load or for a free slot"
        )
        queue.add_metric([], self._scheduler.queue_depth)
        active = GaugeMetricFamily(
            "corral_requests_active", "Requests holding or waiting for an engine slot"
        )
        active.add_metric([], sum(engine.active for engine in running))
        # The Gateway API Inference Extension's model-server gauges (an InferencePool's
        # endpoint picker reads queued, running and KV-cache use): a slot's share of the KV
        # cache is reserved whole at load, so busy slots / slots is the share in use.
        busy = sum(min(engine.active, engine.spec.num_parallel) for engine in running)
        slots = sum(engine.spec.num_parallel for engine in running)
        queued = GaugeMetricFamily(
            "corral_requests_queued", "Requests waiting for a model to load or for a free slot"
        )
        queued.add_metric([], self._scheduler.queue_depth)
        running_now = GaugeMetricFamily(
            "corral_requests_running", "Requests holding an engine slot (generating)"
        )
        running_now.add_metric([], busy)
        kv = GaugeMetricFamily(
            "corral_kv_cache_utilization", "Share of the loaded engines' KV cache in use (0-1)"
        )
        kv.add_metric([], busy / slots if slots else 0.0)
        return [loaded, memory, queue, active, queued, running_now, kv]


class Metrics(Observer):
    """The app's metrics and its Prometheus registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "corral_http_requests",
            "HTTP requests by route template, method and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "corral_http_request_duration_seconds",
            "Time from request to the last byte of the response",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "corral_time_to_first_token_seconds",
            "Time from a chat/generate request to its first token (load and queue included)",
            ["model"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "corral_prompt_tokens", "Prompt tokens evaluated", ["model"], registry=r
        )
        self.generated_tokens = Counter(
            "corral_generated_tokens", "Tokens generated", ["model"], registry=r
        )
        self.tokens_per_second = Histogram(
            "corral_generation_tokens_per_second",
            "Generation speed of each request, as the engine timed it",
            ["model"],
            buckets=_RATE_BUCKETS,
            registry=r,
        )
        self.draft_tokens = Counter(
            "corral_draft_tokens",
            "Tokens proposed by speculative decoding (a draft model or n-grams)",
            ["model"],
            registry=r,
        )
        self.draft_accepted = Counter(
            "corral_draft_accepted_tokens",
            "Proposed tokens the model kept (accepted / proposed is the acceptance rate)",
            ["model"],
            registry=r,
        )
        self.engine_starts = Counter(
            "corral_engine_starts", "Engine processes started", ["model"], registry=r
        )
        self.engine_crashes = Counter(
            "corral_engine_crashes",
            "Engines that died or stopped answering and were dropped",
            ["model"],
            registry=r,
        )
        self.pull_bytes_total = Counter(
            "corral_pull_bytes", "Bytes received from registries by pulls", registry=r
        )
        self.pulls = Counter("corral_pulls", "Pulls finished, by result", ["result"], registry=r)
        for result in ("success", "failure"):
            self.pulls.labels(result)  # present (at 0) before the first pull
        self._scheduler: _SchedulerCollector | None = None

    def watch_scheduler(self, scheduler: Scheduler) -> None:
        """Report the scheduler's loaded models and queue (once per app)."""
        if self._scheduler is not None:
            self.registry.unregister(self._scheduler)
        self._scheduler = _SchedulerCollector(scheduler)
        self.registry.register(self._scheduler)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # -- the Observer hooks ----------------------------------------------------------------

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def generation(
        self,
        model: str,
        *,
        ttft: float | None,
        prompt_tokens: int,
        eval_tokens: int,
        eval_seconds: float,
        draft_tokens: int = 0,
        draft_accepted: int = 0,
    ) -> None:
        if draft_tokens > 0:
            self.draft_tokens.labels(model).inc(draft_tokens)
            self.draft_accepted.labels(model).inc(max(0, draft_accepted))
        if ttft is not None:
            self.ttft.labels(model).observe(ttft)
        self.prompt_tokens.labels(model).inc(max(0, prompt_tokens))
        self.generated_tokens.labels(model).inc(max(0, eval_tokens))
        # One token has no rate: the engine times it at about a microsecond (1e6 tokens/s).
        if eval_tokens > 1 and eval_seconds > 0:
            self.tokens_per_second.labels(model).observe(eval_tokens / eval_seconds)

    def engine_started(self, model: str) -> None:
        self.engine_starts.labels(model).inc()

    def engine_crashed(self, model: str) -> None:
        self.engine_crashes.labels(model).inc()

    def pull_bytes(self, count: int) -> None:
        self.pull_bytes_total.inc(count)

    def pull_finished(self, ok: bool) -> None:
        self.pulls.labels("success" if ok else "failure").inc()


def _route_patterns(router: Router) -> list[tuple[re.Pattern[str], str]]:
    """(path regex, template) of every route, with included routers flattened (FastAPI
    wraps them; their routes are only reachable through ``effective_route_contexts``)."""
    patterns = []
    for route in router.routes:
        expand = getattr(route, "effective_route_contexts", None)
        for leaf in expand() if callable(expand) else (route,):
            regex, template = getattr(leaf, "path_regex", None), getattr(leaf, "path_format", None)
            if isinstance(regex, re.Pattern) and isinstance(template, str):
                patterns.append((regex, template))
    return patterns


def route_template(scope: Scope, patterns: list[tuple[re.Pattern[str], str]]) -> str:
    """The template of the route that served this request; for one refused before routing
    (401, 413), the first template its path matches."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    raw = scope.get("path", "")
    for regex, template in patterns:
        if regex.match(raw):
            return template
    return UNMATCHED


class MetricsMiddleware:
    """Counts and times every HTTP request, outermost, so refusals (401, 413) count too."""

    def __init__(self, app: ASGIApp, metrics: Metrics, router: Router) -> None:
        self.app = app
        self.metrics = metrics
        self.router = router
        self._patterns: list[tuple[re.Pattern[str], str]] | None = None  # built on first use

    def _template(self, scope: Scope) -> str:
        if self._patterns is None:
            self._patterns = _route_patterns(self.router)
        return route_template(scope, self._patterns)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before any response is a server error

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.request(
                scope.get("method", ""),
                self._template(scope),
                status,
                time.perf_counter() - started,
            )


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    collected: Metrics = request.app.state.metrics
    return Response(collected.render(), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI, metrics: Metrics) -> None:
    """Mount ``/metrics`` and the request middleware (call it after the other middlewares,
    so that it wraps them)."""
    app.state.metrics = metrics
    app.include_router(router)
    app.add_middleware(MetricsMiddleware, metrics=metrics, router=app.router)

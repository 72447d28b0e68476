"""The scheduler on the real engine: parallel slots, and an engine killed mid-stream."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer, engine_pids, short_generate, start_server

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def two_slots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("slots") / "home", CORRAL_NUM_PARALLEL="2", CORRAL_NUM_THREADS="2"
    )
    yield server
    server.stop()


def stream_times(server: LiveServer, prompt: str, out: list[float]) -> None:
    body = {"model": "smollm2:135m", "prompt": prompt, "options": {"num_predict": 48}}
    with httpx.stream("POST", server.url + "/api/generate", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if json.loads(line).get("response"):
                out.append(time.monotonic())


def test_two_streams_to_one_model_overlap(two_slots: LiveServer) -> None:
    httpx.post(two_slots.url + "/api/generate", json={"model": "smollm2:135m"}, timeout=120)
    first: list[float] = []
    second: list[float] = []
    threads = [
        threading.Thread(target=stream_times, args=(two_slots, "Tell a story about a cat.", first)),
        threading.Thread(
            target=stream_times, args=(two_slots, "Tell a story about a dog.", second)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert first and second
    # Continuous batching: each stream produced tokens while the other was still running.
    assert second[0] < first[-1] and first[0] < second[-1]
    assert len(engine_pids(two_slots.process.pid)) == 1  # one engine, two slots


def test_engine_killed_mid_stream(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", CORRAL_NUM_THREADS="1")
    try:
        body = {
            "model": "smollm2:135m",
            "prompt": "Count to a thousand.",
            "options": {"num_predict": 2000},
        }
        with httpx.stream("POST", server.url + "/api/generate", json=body, timeout=120) as response:
            lines = response.iter_lines()
            assert json.loads(next(lines))["done"] is False
            [engine] = engine_pids(server.process.pid)
            os.kill(engine, signal.SIGKILL)
            rest = [json.loads(line) for line in lines]
        assert "error" in rest[-1] and "stopped unexpectedly" in rest[-1]["error"]
        assert httpx.get(server.url + "/health/ready").status_code == 200  # the server is fine
        again = short_generate(server.url)
        assert again.status_code == 200 and again.json()["done"] is True
        assert engine_pids(server.process.pid) != [engine]
    finally:
        server.stop()

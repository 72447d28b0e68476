"""One model over two llama.cpp RPC workers on loopback, through a real corral server: the
same greedy answer as unsplit, the workers in the fit, and a worker killed mid-stream."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from corral.runner.rpc import reachable
from tests.live import LiveServer, engine_pids, free_port, start_server

pytestmark = pytest.mark.engine

PROMPT = "Name three colours and say why you like them."


def start_worker(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "worker", "--port", str(port), "--threads", "1"],
        env={"CORRAL_HOME": str(home), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not reachable(endpoint):
        assert proc.poll() is None and time.monotonic() < deadline, "corral worker did not start"
        time.sleep(0.1)
    return proc, endpoint


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[bytes], str]]]:
    started = [start_worker(tmp_path / f"worker{i}") for i in range(2)]
    yield started
    for proc, _ in started:
        proc.kill()
        proc.wait()


def chat(url: str, **extra: object) -> httpx.Response:
    body = {
        "model": "smollm2:135m",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": False,
        "options": {"temperature": 0, "seed": 1, "num_predict": 48},
        **extra,
    }
    return httpx.post(f"{url}/api/chat", json=body, timeout=180)


def engine_rpc(server: LiveServer) -> str:
    [pid] = engine_pids(server.process.pid)
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return args[args.index(b"--rpc") + 1].decode() if b"--rpc" in args else ""


def test_split_over_two_workers_answers_as_unsplit(
    live_server: LiveServer, workers: list[tuple[subprocess.Popen[bytes], str]], tmp_path: Path
) -> None:
    plain = chat(live_server.url).json()["message"]["content"]
    endpoints = [endpoint for _, endpoint in workers]
    server = start_server(
        tmp_path / "home", CORRAL_RPC_WORKERS=",".join(endpoints), CORRAL_NUM_THREADS="1"
    )
    try:
        split = chat(server.url)
        assert split.status_code == 200, split.text
        assert split.json()["message"]["content"] == plain
        assert engine_rpc(server) == ",".join(endpoints)
        fit = httpx.post(f"{server.url}/api/fit", json={"model": "smollm2:135m"}, timeout=60)
        # the loaded engine holds both workers (one engine each), so the fit now says local
        assert fit.status_code == 200 and fit.json()["fits"] is True
    finally:
        server.stop()


def test_a_worker_killed_mid_stream_fails_that_answer_only(
    workers: list[tuple[subprocess.Popen[bytes], str]], tmp_path: Path
) -> None:
    endpoints = [endpoint for _, endpoint in workers]
    server = start_server(
        tmp_path / "home", CORRAL_RPC_WORKERS=",".join(endpoints), CORRAL_NUM_THREADS="1"
    )
    try:
        fit = httpx.post(f"{server.url}/api/fit", json={"model": "smollm2:135m"}, timeout=60)
        report = fit.json()
        assert [g["name"] for g in report["vram"]["gpus"]] == endpoints
        assert "2 RPC workers" in report["verdict"], report["verdict"]
        body = {
            "model": "smollm2:135m",
            "prompt": "Count to a thousand.",
            "options": {"num_predict": 2000},
        }
        with httpx.stream("POST", f"{server.url}/api/generate", json=body, timeout=120) as r:
            lines = r.iter_lines()
            assert json.loads(next(lines))["done"] is False
            workers[1][0].kill()
            rest = [json.loads(line) for line in lines]
        assert "error" in rest[-1], rest[-1]
        assert httpx.get(f"{server.url}/health/ready").status_code == 200
        again = chat(server.url)  # reloads on the worker that is left
        assert again.status_code == 200, again.text
        assert engine_rpc(server) == endpoints[0]
    finally:
        server.stop()

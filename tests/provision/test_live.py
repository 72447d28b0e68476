"""A real ``corral serve`` with ``CORRAL_PULL`` naming a model in a real local docker-registry
(through a throttling proxy, so the pull is slow enough to watch): live at once, 503 with
progress while pulling, then ready and serving it; restarted, ready without downloading."""

from __future__ import annotations

import signal
import time
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, alive, engine_pids, short_generate
from tests.provision.conftest import spawn_live
from tests.registry.servers import Proxy, ProxyConfig, Registry

pytestmark = [pytest.mark.engine, pytest.mark.registry]


def watch_until_ready(server: LiveServer, limit: float = 180) -> tuple[list[dict[str, Any]], float]:
    """Every 503 body seen before the first 200, and the seconds until that 200."""
    seen: list[dict[str, Any]] = []
    started = time.monotonic()
    while time.monotonic() - started < limit:
        assert server.process.poll() is None, server.log.read_text()[-3000:]
        response = httpx.get(server.url + "/health/ready", timeout=5)
        if response.status_code == 200:
            return seen, time.monotonic() - started
        assert response.status_code == 503
        seen.append(response.json())
        time.sleep(0.05)
    raise AssertionError(f"never ready: {seen[-1:]}")


def stop(server: LiveServer) -> None:
    engines = engine_pids(server.process.pid)
    assert server.stop() in (0, -signal.SIGTERM), server.log.read_text()[-2000:]
    assert [pid for pid in engines if alive(pid)] == []


def test_corral_pull_from_a_local_registry(
    registry: Registry, published: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("provision-live") / "home"
    with Proxy(ProxyConfig(upstream=registry.host, rate=24e6)) as proxy:
        name = published.replace(registry.host, proxy.host)
        env = {"CORRAL_PULL": name, "CORRAL_NO_DEFAULT_MODEL": "1"}
        server, live_after = spawn_live(home, **env)
        try:
            seen, ready_after = watch_until_ready(server)
            pulling = [b for b in seen if b.get("action") == "pulling" and b.get("total")]
            assert pulling, seen[:3]
            assert pulling[0]["reason"] == "provisioning models"
            assert pulling[0]["model"] == name and pulling[0]["remaining"] == 1
            assert 0 <= pulling[0]["percent"] < 100
            assert pulling[-1]["completed"] >= pulling[0]["completed"]
            tags = httpx.get(server.url + "/api/tags").json()["models"]
            assert [m["name"] for m in tags] == [name]
            answer = short_generate(server.url, name)
            assert answer.status_code == 200 and answer.json()["eval_count"] > 0
        finally:
            stop(server)
        downloaded = proxy.cfg.blob_bytes
        assert downloaded > 90_000_000  # the GGUF came through the proxy once

        again, live_again = spawn_live(home, **env)
        try:
            _, ready_again = watch_until_ready(again)
            assert proxy.cfg.blob_bytes == downloaded  # nothing downloaded the second time
            log = again.log.read_text()
            assert "provisioned " + name + ": present" in log
            skipped_in = log.split("provisioning finished in ", 1)[1].split(" s")[0]
        finally:
            stop(again)
    # Timings for the report (not assertions): -s shows them.
    print(
        f"\nfirst start: live {live_after:.2f} s, ready {ready_after:.2f} s later "
        f"({downloaded / 1e6:.0f} MB at 24 MB/s); restart: live {live_again:.2f} s, "
        f"ready {ready_again:.3f} s later (provisioning itself: {skipped_in} s)"
    )


def test_a_bad_name_leaves_the_server_not_ready_with_the_reason(
    registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("provision-bad") / "home"
    name = f"{registry.host}/library/nothing-here:1"
    server, _ = spawn_live(home, CORRAL_PULL=name, CORRAL_NO_DEFAULT_MODEL="1")
    try:
        deadline = time.monotonic() + 60
        body: dict[str, Any] = {}
        while time.monotonic() < deadline and "failed" not in body:
            response = httpx.get(server.url + "/health/ready", timeout=5)
            assert response.status_code == 503
            body = response.json()
            time.sleep(0.05)
        assert body["reason"].startswith(f"provisioning failed: {name}: ")
        assert "does not exist" in body["failed"][0]["error"]
        assert httpx.get(server.url + "/health/live").status_code == 200
        assert f"provisioning {name} (CORRAL_PULL) failed" in server.log.read_text()
    finally:
        stop(server)

"""The provisioner against a scripted backend: skips, retries, failures, readiness states."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.api.health import Readiness
from corral.errors import InsufficientDiskSpace, ManifestUnknown, RegistryError
from corral.provision import Provisioner, is_transient, parse_plan, readiness_listener


class ScriptedBackend:
    """Models appear in ``present`` when pulled or created; ``failures`` raise in order."""

    def __init__(self, *, can_preload: bool = True) -> None:
        self.can_preload = can_preload
        self.present: dict[str, str] = {}
        self.failures: dict[str, list[BaseException]] = {}
        self.pulls: list[str] = []
        self.insecure: list[bool] = []
        self.creates: list[tuple[str, str]] = []
        self.preloads: list[str] = []
        self.seen: list[dict[str, Any]] = []  # readiness snapshots taken mid-pull
        self.readiness: Readiness | None = None

    def manifest_digest(self, name: str) -> str | None:
        return self.present.get(name)

    def _fail(self, name: str) -> None:
        if self.failures.get(name):
            raise self.failures[name].pop(0)

    async def pull(self, name: str, *, insecure: bool) -> AsyncIterator[dict[str, Any]]:
        self.pulls.append(name)
        self.insecure.append(insecure)
        yield {"status": "pulling manifest"}
        self._fail(name)
        for done in (0, 50, 100):
            yield {"status": "pulling abc", "digest": "sha256:ab", "total": 100, "completed": done}
            if self.readiness is not None:
                self.seen.append({"ready": self.readiness.ready, **self.readiness.detail})
        yield {"status": "success"}
        self.present[name] = f"sha256:{len(self.pulls)}"

    async def create(self, name: str, modelfile: str) -> AsyncIterator[dict[str, Any]]:
        self.creates.append((name, modelfile))
        self._fail(name)
        yield {"status": "success"}
        self.present[name] = f"sha256:c{len(self.creates)}"

    async def preload(self, name: str) -> None:
        self._fail(name + "#load")
        self.preloads.append(name)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make(
    text: str, backend: ScriptedBackend, tmp_path: Path
) -> tuple[Provisioner, Readiness, Sleeps]:
    readiness = Readiness()
    backend.readiness = readiness
    sleeps = Sleeps()
    provisioner = Provisioner(
        parse_plan(text, source="p.yaml", base_dir=tmp_path),
        backend,
        state_file=tmp_path / "state.json",
        listener=readiness_listener(readiness),
        sleep=sleeps,
    )
    return provisioner, readiness, sleeps


def test_pulls_then_ready_with_progress_in_the_meantime(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    provisioner, readiness, _ = make("- a\n- b\n", backend, tmp_path)
    provisioner.notify()
    assert not readiness.ready and readiness.detail["remaining"] == 2
    assert asyncio.run(provisioner.run())
    assert readiness.ready
    assert backend.pulls == ["a:latest", "b:latest"]
    first = backend.seen[1]  # a at 50 %
    assert first["ready"] is False
    assert (first["model"], first["action"], first["percent"]) == ("a:latest", "pulling", 50.0)
    assert first["remaining"] == 2
    assert [m["state"] for m in first["models"]] == ["pulling", "pending"]
    assert backend.seen[-1]["models"][0] == {
        "name": "a:latest",
        "state": "done",
        "action": "pulled",
        "completed": 100,
        "total": 100,
        "percent": 100.0,
    }
    assert [s.action for s in provisioner.status.values()] == ["pulled", "pulled"]


def test_present_models_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    backend = ScriptedBackend()
    backend.present = {"a:latest": "sha256:1", "b:latest": "sha256:2"}
    provisioner, readiness, _ = make("- a\n- b\n", backend, tmp_path)
    with caplog.at_level(logging.INFO, logger="corral.provision"):
        assert asyncio.run(provisioner.run())
    assert backend.pulls == [] and readiness.ready
    assert [s.action for s in provisioner.status.values()] == ["present", "present"]
    assert "provisioning finished in" in caplog.text and "2 present" in caplog.text


def test_update_pulls_again_and_tells_up_to_date(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    backend.present = {"a:latest": "sha256:1"}  # the scripted pull writes sha256:1 again
    text = "- name: a\n  update: true\n  insecure: true\n- b\n"
    provisioner, _, _ = make(text, backend, tmp_path)
    assert asyncio.run(provisioner.run())
    assert backend.pulls == ["a:latest", "b:latest"]
    assert backend.insecure == [True, False]
    assert provisioner.status["a:latest"].action == "up to date"


def test_network_failures_retry_with_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = ScriptedBackend()
    backend.failures["a:latest"] = [
        RegistryError("registry 127.0.0.1:1: ConnectError"),
        httpx.ReadTimeout("slow"),
    ]
    text = "models: [a]\nretry: {attempts: 3, backoff: 1}\n"
    provisioner, readiness, sleeps = make(text, backend, tmp_path)
    with caplog.at_level(logging.WARNING, logger="corral.provision"):
        assert asyncio.run(provisioner.run())
    assert sleeps.delays == [1.0, 2.0]
    assert backend.pulls == ["a:latest"] * 3
    assert readiness.ready and provisioner.status["a:latest"].error is None
    assert "try 1 of 3 failed" in caplog.text and "retrying in 1.0 s" in caplog.text


def test_a_required_model_that_keeps_failing_keeps_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = ScriptedBackend()
    backend.failures["a:latest"] = [RegistryError(f"down {n}") for n in range(5)]
    text = "models: [a, b]\nretry: {attempts: 2, backoff: 0.5}\n"
    provisioner, readiness, sleeps = make(text, backend, tmp_path)
    with caplog.at_level(logging.ERROR, logger="corral.provision"):
        assert not asyncio.run(provisioner.run())
    assert sleeps.delays == [0.5]
    assert not readiness.ready
    assert readiness.reason == "provisioning failed: a:latest: down 1"
    assert readiness.detail["failed"] == [{"name": "a:latest", "error": "down 1"}]
    assert readiness.detail["remaining"] == 1  # b was still provisioned
    assert provisioner.status["b:latest"].state == "done"
    assert "provisioning a:latest (p.yaml:1) failed after 2 tries: down 1" in caplog.text


def test_permanent_errors_are_not_retried(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    backend.failures["nope:latest"] = [ManifestUnknown("pull model manifest: file does not exist")]
    provisioner, readiness, sleeps = make("- nope\n", backend, tmp_path)
    assert not asyncio.run(provisioner.run())
    assert sleeps.delays == [] and backend.pulls == ["nope:latest"]
    assert readiness.reason.endswith("nope:latest: pull model manifest: file does not exist")


def test_optional_models_do_not_block_readiness(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    backend.failures["big:70b"] = [ManifestUnknown("gone")]
    text = "- name: big:70b\n  optional: true\n- a\n"
    provisioner, readiness, _ = make(text, backend, tmp_path)
    assert asyncio.run(provisioner.run())
    assert backend.pulls == ["a:latest", "big:70b"]  # required first
    assert readiness.ready
    assert provisioner.status["big:70b"].as_json() == {
        "name": "big:70b",
        "state": "failed",
        "optional": True,
        "error": "gone",
    }


def test_creates_are_recorded_and_skipped_until_the_definition_changes(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    backend.present["base:latest"] = "sha256:b"
    text = "- base\n- name: terse\n  from: base\n  system: be brief\n"
    provisioner, _, _ = make(text, backend, tmp_path)
    assert asyncio.run(provisioner.run())
    assert [name for name, _ in backend.creates] == ["terse:latest"]
    assert "SYSTEM" in backend.creates[0][1] and "be brief" in backend.creates[0][1]
    assert '"terse:latest"' in (tmp_path / "state.json").read_text()

    again, _, _ = make(text, backend, tmp_path)
    assert asyncio.run(again.run())
    assert len(backend.creates) == 1 and again.status["terse:latest"].action == "present"

    changed, _, _ = make(text.replace("be brief", "be verbose"), backend, tmp_path)
    assert asyncio.run(changed.run())
    assert len(backend.creates) == 2 and changed.status["terse:latest"].action == "created"

    del backend.present["terse:latest"]  # deleted by hand: made again
    gone, _, _ = make(text.replace("be brief", "be verbose"), backend, tmp_path)
    assert asyncio.run(gone.run())
    assert len(backend.creates) == 3


def test_preload_loads_or_says_why_not(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    provisioner, _, _ = make("- name: a\n  preload: true\n- b\n", backend, tmp_path)
    assert asyncio.run(provisioner.run())
    assert backend.preloads == ["a:latest"]
    assert provisioner.status["a:latest"].action == "pulled, loaded"

    offline = ScriptedBackend(can_preload=False)
    provisioner, _, _ = make("- name: a\n  preload: true\n", offline, tmp_path)
    assert asyncio.run(provisioner.run())
    assert provisioner.status["a:latest"].action == "pulled, preload skipped (no server)"


def test_a_failed_preload_is_a_failure(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    backend.failures["a:latest#load"] = [InsufficientDiskSpace("no room")]
    provisioner, readiness, _ = make("- name: a\n  preload: true\n", backend, tmp_path)
    assert not asyncio.run(provisioner.run())
    assert readiness.reason == "provisioning failed: a:latest: no room"


def test_transient_classification() -> None:
    assert is_transient(RegistryError("503 from the registry"))
    assert is_transient(httpx.ConnectError("refused"))
    assert is_transient(TimeoutError())
    assert not is_transient(ManifestUnknown("no such model"))
    assert not is_transient(InsufficientDiskSpace("full"))
    assert not is_transient(ValueError("bug"))

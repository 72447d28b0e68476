"""Provisioning inside the server (fake engines, real store), and ``corral provision``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.cli.main import main
from corral.config import Settings
from corral.provision import ProvisionError
from corral.store.models import Store
from tests.fakes import FakeFactory


def wait_ready(client: TestClient, *, failed: bool = False) -> dict[str, Any]:
    """Poll /health/ready until it is 200 (or, with ``failed``, reports a failure)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = client.get("/health/ready")
        body: dict[str, Any] = response.json()
        if response.status_code == 200 or (failed and "failed" in body):
            return body
        time.sleep(0.02)
    raise AssertionError(f"never got there: {body}")


@pytest.fixture
def provision_file(tmp_path: Path, smollm2_path: Path) -> Path:
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "provision.yaml"
    path.write_text(
        "models:\n"
        "  - name: base\n"
        f"    from: {smollm2_path}\n"
        "  - name: terse\n"
        "    from: base\n"
        "    system: Answer in one sentence.\n"
        "    preload: true\n"
    )
    return path


def test_server_provisions_in_the_background_and_preloads(
    tmp_path: Path, provision_file: Path
) -> None:
    settings = Settings(home=tmp_path / "home", provision=provision_file, no_default_model=True)
    factory = FakeFactory()
    app = create_app(settings, engine_factory=factory)
    with TestClient(app) as client:
        assert client.get("/health/live").json() == {"status": "live"}
        assert wait_ready(client) == {"status": "ready"}
        names = sorted(m["name"] for m in client.get("/api/tags").json()["models"])
        assert names == ["base:latest", "terse:latest"]
        shown = client.post("/api/show", json={"model": "terse"}).json()
        assert shown["system"] == "Answer in one sentence."
        running = client.get("/api/ps").json()["models"]
        assert [m["name"] for m in running] == ["terse:latest"]
        assert int(running[0]["expires_at"][:4]) > time.gmtime().tm_year + 100  # forever
        status = app.state.provisioner.status
        assert [s.action for s in status.values()] == ["created", "created, loaded"]
    assert len(factory.engines) == 1


def test_a_failing_required_pull_keeps_the_server_live_but_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "models:\n  - 127.0.0.1:1/library/gone:1\nretry: {attempts: 2, backoff: 0.01}\n"
    )
    settings = Settings(home=tmp_path / "home", provision=path, no_default_model=True)
    with TestClient(create_app(settings, engine_factory=FakeFactory())) as client:
        body = wait_ready(client, failed=True)
        assert client.get("/health/ready").status_code == 503
        assert client.get("/health/live").status_code == 200
        assert body["status"] == "not ready"
        assert body["reason"].startswith("provisioning failed: 127.0.0.1:1/library/gone:1: ")
        assert body["failed"][0]["name"] == "127.0.0.1:1/library/gone:1"
        assert body["models"][0]["attempt"] == 2
        assert client.get("/api/tags").json()["models"] == []  # still serves the API


def test_corral_pull_setting_is_split_and_a_bad_file_fails_the_factory(tmp_path: Path) -> None:
    assert Settings(pull="a, b:1,,").pull == ["a", "b:1"]
    bad = tmp_path / "p.yaml"
    bad.write_text("models:\n  - name: x\n    preload: maybe\n")
    with pytest.raises(ProvisionError, match=r"p.yaml:3: models\[0\].preload"):
        create_app(Settings(home=tmp_path, provision=bad), engine_factory=FakeFactory())


# -- corral provision / corral serve --provision ----------------------------------------------


def test_corral_provision_runs_once_and_is_idempotent(
    provision_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["provision", str(provision_file)]) == 0
    out = capsys.readouterr().out
    assert "base:latest: created" in out and "terse:latest: created" in out
    assert "terse:latest: created, preload skipped (no server)" in out
    assert "loading" not in out
    assert "provisioned 2 of 2 models" in out
    store = Store(Settings().models_dir)
    assert store.get("terse").system == "Answer in one sentence."

    assert main(["provision", str(provision_file)]) == 0
    out = capsys.readouterr().out
    assert "base:latest: present" in out
    assert "terse:latest: present, preload skipped (no server)" in out


def test_corral_provision_check_and_errors(
    tmp_path: Path, provision_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["provision", "--check", str(provision_file), "--pull", "extra:1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"create base:latest  ({provision_file}:2)"
    assert out[1] == f"create terse:latest [preload]  ({provision_file}:4)"
    assert out[2] == "pull extra:1  (CORRAL_PULL)"
    assert not Settings().models_dir.exists()  # --check touches nothing

    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: x\n    colour: red\n")
    assert main(["provision", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {bad}:3: models[0]: unknown field 'colour'")
    assert main(["serve", "--provision", str(bad)]) == 1  # checked before the server starts
    assert f"{bad}:3: models[0]" in capsys.readouterr().err
    assert main(["provision"]) == 1


def test_corral_provision_exits_1_when_a_required_model_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("models:\n  - 127.0.0.1:1/library/gone:1\nretry: {attempts: 1}\n")
    assert main(["provision", str(path)]) == 1
    captured = capsys.readouterr()
    assert "127.0.0.1:1/library/gone:1: FAILED: " in captured.out
    assert "required models failed: 127.0.0.1:1/library/gone:1" in captured.err


def test_serve_flags_reach_the_settings(
    tmp_path: Path, provision_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import corral.api.server

    seen: list[Settings] = []
    monkeypatch.setattr(corral.api.server, "run_server", seen.append)
    assert main(["serve", "--provision", str(provision_file), "--pull", "a, b:1"]) == 0
    assert seen[0].provision == provision_file and seen[0].pull == ["a", "b:1"]
    monkeypatch.setenv("CORRAL_PULL", "x,y")
    assert main(["serve"]) == 0
    assert seen[1].pull == ["x", "y"] and seen[1].provision is None

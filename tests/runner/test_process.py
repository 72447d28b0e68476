"""Process handling with a fake llama-server (a Python script): no engine needed."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from corral.errors import EngineStartError
from corral.runner import process as process_mod
from corral.runner.engine import start_engine
from corral.runner.process import _excerpt, free_port, log_file_name
from corral.runner.protocol import LoadSpec
from tests.runner.helpers import eventually, pid_gone, write_script

FAKE = """
import http.server, os, pathlib, signal, sys, time

mode = os.environ["FAKE_MODE"]
pathlib.Path(os.environ["FAKE_PIDFILE"]).write_text(str(os.getpid()))
print("I srv  fake engine starting", flush=True)
if "ignore-term" in mode:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "fail":
    print("0.00.008.655 E gguf_init_from_file: failed to open GGUF file 'x.gguf'", flush=True)
    print("0.00.008.900 I srv    operator(): cleaning up before exit...", flush=True)
    sys.exit(3)
if mode.startswith("hang"):
    while True:
        time.sleep(1)
port = int(sys.argv[sys.argv.index("--port") + 1])

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}')

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", port), Handler)
print("I srv  listening", flush=True)
server.serve_forever()
"""


@pytest.fixture
def fake_engine(fake_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAKE_PIDFILE", str(tmp_path / "pid"))
    return write_script(fake_bin / "llama-server", FAKE)


def fake_pid(tmp_path: Path) -> int:
    return int((tmp_path / "pid").read_text())


async def wait_gone(pid: int, within: float = 5.0) -> bool:
    return await eventually(lambda: pid_gone(pid), within)


SPEC = LoadSpec(Path("/models/x.gguf"), num_ctx=512, label="fake/model:latest")


def test_log_file_name() -> None:
    assert log_file_name("smollm2:135m") == "engine-smollm2_135m.log"
    assert log_file_name("hf.co/org/Model-GGUF:Q4_K_M") == "engine-hf.co_org_Model-GGUF_Q4_K_M.log"
    assert log_file_name("../../etc") == "engine-etc.log"
    assert log_file_name("") == "engine-model.log"


def test_excerpt_prefers_error_lines() -> None:
    lines = [
        "0.00.007.843 I srv    load_model: loading model 'x'",
        "0.00.007.983 E gguf_init_from_reader: failed to read header",
        "0.00.008.117 E llama_model_load: error loading model",
        "0.00.008.198 E gguf_init_from_reader: failed to read header",
        "0.00.008.284 I srv    operator(): cleaning up before exit...",
    ]
    assert _excerpt(lines) == (
        ":\n  E gguf_init_from_reader: failed to read header"
        "\n  E llama_model_load: error loading model"
    )
    assert _excerpt(["plain output", "more"]) == ":\n  plain output\n  more"
    assert _excerpt([]) == ""


def test_free_port() -> None:
    port = free_port()
    assert 1024 <= port <= 65535


async def test_exit_while_loading(
    fake_engine: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_MODE", "fail")
    with pytest.raises(EngineStartError) as info:
        await start_engine(SPEC, binary=fake_engine, load_timeout=30, log_dir=tmp_path / "logs")
    message = info.value.message
    assert "fake/model:latest" in message
    assert "code 3" in message
    assert "failed to open GGUF file" in message
    assert "cleaning up" not in message  # error lines only
    log = (tmp_path / "logs" / "engine-fake_model_latest.log").read_text()
    assert "failed to open GGUF file" in log and "--port" in log


async def test_load_timeout_kills(
    fake_engine: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_MODE", "hang-ignore-term")
    started = time.monotonic()
    with pytest.raises(EngineStartError, match=r"not ready after 0\.5 s") as info:
        await start_engine(SPEC, binary=fake_engine, load_timeout=0.5)
    assert time.monotonic() - started < 3
    assert "fake engine starting" in info.value.message
    assert await wait_gone(fake_pid(tmp_path), 2)


async def test_cancelled_start_leaves_no_process(
    fake_engine: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_MODE", "hang-ignore-term")
    task = asyncio.create_task(start_engine(SPEC, binary=fake_engine, load_timeout=60))
    assert await eventually((tmp_path / "pid").exists)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone(fake_pid(tmp_path), 2)


async def test_start_and_stop(fake_engine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MODE", "serve")
    engine = await start_engine(SPEC, binary=fake_engine, load_timeout=30)
    try:
        assert engine.is_alive()
        assert engine.spec is SPEC
        # its own session and process group: a Ctrl-C in the terminal does not reach it
        assert os.getsid(engine.pid) == engine.pid
        assert os.getpgid(engine.pid) == engine.pid != os.getpgrp()
        assert engine.process in process_mod._live
    finally:
        await engine.stop()
    assert not engine.is_alive()
    assert pid_gone(engine.pid)
    assert engine.process not in process_mod._live
    await engine.stop()  # idempotent


async def test_stop_kills_after_grace(fake_engine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MODE", "serve-ignore-term")
    engine = await start_engine(SPEC, binary=fake_engine, load_timeout=30)
    started = time.monotonic()
    await engine.process.stop(grace=0.3)
    assert 0.3 <= time.monotonic() - started < 3
    assert engine.process.returncode == -9
    assert pid_gone(engine.pid)
    await engine.stop()


async def test_kill_now_and_kill_all(fake_engine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MODE", "serve-ignore-term")
    one = await start_engine(SPEC, binary=fake_engine, load_timeout=30)
    two = await start_engine(SPEC, binary=fake_engine, load_timeout=30)
    one.kill_now()  # synchronous, no await
    assert await wait_gone(one.pid, 2)
    process_mod.kill_all_now()
    assert await wait_gone(two.pid, 2)
    await one.stop()
    await two.stop()
    assert one.process.returncode == two.process.returncode == -9


async def test_tail_keeps_last_lines(fake_engine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MODE", "serve")
    engine = await start_engine(SPEC, binary=fake_engine, load_timeout=30)
    await engine.stop()
    assert engine.process.tail() == ["I srv  fake engine starting", "I srv  listening"]
    assert engine.process.tail(1) == ["I srv  listening"]


async def test_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(EngineStartError, match="cannot start"):
        await start_engine(SPEC, binary=tmp_path / "nope", load_timeout=5)


async def test_engine_factory_from_settings(
    fake_engine: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from corral.config import Settings
    from corral.runner.engine import engine_factory

    monkeypatch.setenv("FAKE_MODE", "serve")
    settings = Settings(llama_server=fake_engine, home=tmp_path / "home", load_timeout=30)
    factory = engine_factory(settings)
    engine = await factory(SPEC)
    try:
        assert engine.is_alive()
        assert (tmp_path / "home" / "logs" / "engine-fake_model_latest.log").is_file()
    finally:
        await engine.stop()


async def test_missing_binary_fails_the_load_not_the_server(tmp_path: Path) -> None:
    from corral.config import Settings
    from corral.errors import EngineNotFound
    from corral.runner.engine import engine_factory
    from corral.runner.protocol import LoadSpec

    factory = engine_factory(Settings(llama_server=tmp_path / "missing"))  # no error yet
    with pytest.raises(EngineNotFound, match="CORRAL_LLAMA_SERVER"):
        await factory(LoadSpec(model_path=tmp_path / "m.gguf", num_ctx=512))

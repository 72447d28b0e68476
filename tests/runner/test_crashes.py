"""Engines that die by a signal at load: the diagnosis in words, the one retry with the
fallback flags, and the memory of what worked (a stand-in llama-server, no engine needed)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from corral.config import Settings
from corral.errors import EngineCrashedAtLoad
from corral.runner.compat import COMPAT_FILE, EngineCompat
from corral.runner.crashes import diagnose_exit, fallbacks_for
from corral.runner.engine import engine_factory
from corral.runner.protocol import LoadSpec
from tests.runner.helpers import write_script

# Dies like the native build on a CPU that advertises AMX it cannot run, unless started with
# --no-repack (or always, with FAKE_ALWAYS_CRASH); it appends its argv to FAKE_CALLS.
STAND_IN = """
import http.server, os, signal, sys

with open(os.environ["FAKE_CALLS"], "a") as calls:
    calls.write(" ".join(sys.argv[1:]) + "\\n")
print("I srv    load_model: loading model 'x.gguf'", flush=True)
if "--no-repack" not in sys.argv or os.environ.get("FAKE_ALWAYS_CRASH"):
    signal.signal(signal.SIGILL, signal.SIG_DFL)
    os.kill(os.getpid(), int(os.environ.get("FAKE_SIGNAL", signal.SIGILL)))
port = int(sys.argv[sys.argv.index("--port") + 1])

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}')

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

SPEC = LoadSpec(Path("/models/x.gguf"), num_ctx=512, label="smollm2:135m")
AMX_CPU = ("avx2", "avx512f", "amx_tile", "amx_int8")


@pytest.fixture
def stand_in(fake_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAKE_CALLS", str(tmp_path / "calls"))
    return write_script(fake_bin / "llama-server", STAND_IN).resolve()


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls").read_text().splitlines()


def test_diagnosis_names_the_signal_and_the_suspect_features() -> None:
    sigill = diagnose_exit(-signal.SIGILL, AMX_CPU)
    assert sigill is not None
    assert sigill.sentence() == (
        "llama-server crashed with an illegal instruction (SIGILL): it was built for a CPU "
        "feature this machine cannot run (this CPU advertises AMX: amx_tile amx_int8)"
    )
    assert "AMX" in diagnose_exit(-signal.SIGSEGV, AMX_CPU).why  # type: ignore[union-attr]
    assert "memory map" in diagnose_exit(-signal.SIGBUS).why  # type: ignore[union-attr]
    assert "out-of-memory" in diagnose_exit(-signal.SIGKILL).why  # type: ignore[union-attr]
    assert diagnose_exit(1) is None and diagnose_exit(0) is None and diagnose_exit(None) is None
    assert fallbacks_for(signal.SIGILL) == (("--no-repack",),)
    assert fallbacks_for(signal.SIGBUS) == ()


async def test_sigill_at_load_is_explained_retried_and_remembered(
    stand_in: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    settings = Settings(llama_server=stand_in, home=home, load_timeout=30)
    engine = await engine_factory(settings)(SPEC)
    try:
        assert engine.is_alive()
    finally:
        await engine.stop()
    first, second = calls(tmp_path)
    assert "--no-repack" not in first.split()
    assert second.split()[-1] == "--no-repack"
    warning = "\n".join(r.getMessage() for r in caplog.records)
    assert "llama-server crashed with an illegal instruction (SIGILL)" in warning
    assert "while loading smollm2:135m; retrying with --no-repack" in warning
    record = next(iter(json.loads((home / COMPAT_FILE).read_text()).values()))
    assert record["extra_args"] == ["--no-repack"]
    assert record["binary"] == str(stand_in)
    assert "SIGILL" in record["reason"]

    # A new server on the same home starts with the flag at once: no crash first.
    engine = await engine_factory(settings)(SPEC)
    await engine.stop()
    assert calls(tmp_path)[2].split()[-1] == "--no-repack"
    assert len(calls(tmp_path)) == 3


def test_a_rebuilt_binary_is_tried_plainly_again(stand_in: Path, tmp_path: Path) -> None:
    compat = EngineCompat(tmp_path / COMPAT_FILE, "cpu-a")
    compat.remember(stand_in, ["--no-repack"], "crashed")
    assert compat.extra_args(stand_in) == ["--no-repack"]
    assert EngineCompat(tmp_path / COMPAT_FILE, "cpu-b").extra_args(stand_in) == []
    stand_in.write_text(stand_in.read_text() + "\n# rebuilt\n")
    assert EngineCompat(tmp_path / COMPAT_FILE, "cpu-a").extra_args(stand_in) == []


async def test_a_crash_the_fallback_does_not_heal_says_what_was_tried(
    stand_in: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_ALWAYS_CRASH", "1")
    settings = Settings(llama_server=stand_in, home=tmp_path / "home", load_timeout=30)
    with pytest.raises(EngineCrashedAtLoad) as info:
        await engine_factory(settings)(SPEC)
    assert info.value.signum == signal.SIGILL
    assert "illegal instruction (SIGILL)" in info.value.message
    assert "corral retried with --no-repack, and the engine crashed again" in info.value.message
    assert len(calls(tmp_path)) == 2
    assert not (tmp_path / "home" / COMPAT_FILE).exists()


async def test_a_crash_with_no_known_fallback_is_not_retried(
    stand_in: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SIGNAL", str(int(signal.SIGBUS)))
    settings = Settings(llama_server=stand_in, home=tmp_path / "home", load_timeout=30)
    with pytest.raises(EngineCrashedAtLoad, match=r"bus error \(SIGBUS\).*smollm2:135m"):
        await engine_factory(settings)(SPEC)
    assert len(calls(tmp_path)) == 1

"""The set-up's engine check (``python -m corral.runner.smoke``) on the real engine, and its
verdict on an engine that crashes whatever corral tries (a stand-in)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.runner.compat import COMPAT_FILE
from corral.runner.discovery import find_llama_server
from corral.runner.smoke import main, proven_extra_args, smoke_test
from tests.runner.helpers import write_script
from tests.runner.test_crashes import STAND_IN


@pytest.mark.engine
async def test_smoke_generates_and_remembers_the_verdict(
    smollm2_path: Path, tmp_path: Path
) -> None:
    binary = find_llama_server(None)
    result = await smoke_test(binary, smollm2_path, tmp_path, tokens=4)
    assert result.tokens == 4 and result.tokens_per_second > 0
    assert result.cpu_features  # the build says which CPU features it uses
    (record,) = json.loads((tmp_path / COMPAT_FILE).read_text()).values()
    assert record["extra_args"] == result.extra_args and record["reason"] == result.reason
    # known now: no model load is needed to answer (the path below does not exist)
    assert await proven_extra_args(binary, tmp_path / "absent.gguf", tmp_path) == result.extra_args


def test_smoke_fails_with_the_diagnosis_when_nothing_helps(
    fake_bin: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FAKE_CALLS", str(tmp_path / "calls"))
    monkeypatch.setenv("FAKE_ALWAYS_CRASH", "1")
    binary = write_script(fake_bin / "llama-server", STAND_IN)
    model = tmp_path / "x.gguf"
    model.write_bytes(b"GGUF")
    assert main(["--binary", str(binary), "--model", str(model)]) == 1
    err = capsys.readouterr().err
    assert "the engine does not run here" in err
    assert "illegal instruction (SIGILL)" in err and "retried with --no-repack" in err
    assert len((tmp_path / "calls").read_text().splitlines()) == 2  # plain, then the fallback
    assert not (tmp_path / "corral-home" / COMPAT_FILE).exists()  # nothing false remembered

"""The real llama-server with SmolLM2-135M (``-m engine``).

One engine serves most tests (module scope); the others start their own only when they
must (stop, failures, kill -9). Threads are pinned to 1 so a busy 2-core machine does not
make llama.cpp's spinning threads crawl.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from corral.core.speculative import NGRAM_TYPES
from corral.errors import BadRequest, EngineCrashed, EngineStartError
from corral.hardware.cpu import read_cpu
from corral.runner import engine as engine_mod
from corral.runner.compat import EngineCompat, cpu_fingerprint
from corral.runner.crashes import fallbacks_for
from corral.runner.discovery import engine_version, find_llama_server
from corral.runner.engine import LlamaServerEngine, start_healing
from corral.runner.flags import server_args
from corral.runner.process import free_port
from corral.runner.protocol import Delta, GenerationParams, LoadSpec
from tests.runner.helpers import eventually, pid_gone

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="module")]

GREEDY = {"temperature": 0.0, "seed": 42}

_CPU = read_cpu()
# One in-memory record for the module: on a CPU the native build cannot run plainly (AMX
# advertised but not runnable) the first start crashes and heals, the rest start healed.
_COMPAT = EngineCompat(None, cpu_fingerprint(_CPU))


async def start_engine(spec: LoadSpec, **kw: Any) -> LlamaServerEngine:
    """The real engine as corral starts it: with the fallback flags this CPU needs."""
    return await start_healing(spec, compat=_COMPAT, cpu_flags=_CPU.flags, **kw)


@pytest.fixture(scope="module")
def binary() -> Path:
    return find_llama_server(None)


def spec_for(path: Path, **kw: object) -> LoadSpec:
    kw.setdefault("num_ctx", 1024)
    kw.setdefault("num_thread", 1)
    kw.setdefault("label", "smollm2:135m")
    return LoadSpec(path, **kw)  # type: ignore[arg-type]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(
    binary: Path, smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LlamaServerEngine]:
    log_dir = tmp_path_factory.mktemp("engine-logs")
    eng = await start_engine(
        spec_for(smollm2_path), binary=binary, load_timeout=60, log_dir=log_dir
    )
    yield eng
    await eng.stop()
    assert pid_gone(eng.pid)


async def collect(stream: AsyncIterator[Delta]) -> tuple[str, Delta]:
    parts: list[str] = []
    final: Delta | None = None
    async for delta in stream:
        assert final is None, "nothing may follow the final delta"
        if delta.done:
            final = delta
        else:
            assert delta.content or delta.thinking
        parts.append(delta.content)
    assert final is not None
    return "".join(parts), final


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def busy_slots(eng: LlamaServerEngine) -> list[bool]:
    async with httpx.AsyncClient(base_url=eng.base_url, trust_env=False) as http:
        return [s["is_processing"] for s in (await http.get("/slots")).json()]


async def test_engine_version(binary: Path) -> None:
    assert engine_version(binary) != "unknown"


async def test_every_flag_is_in_help(binary: Path) -> None:
    spec = LoadSpec(
        Path("m.gguf"),
        num_ctx=512,
        num_parallel=2,
        num_batch=128,
        num_gpu=0,
        main_gpu=0,
        num_thread=1,
        use_mmap=False,
        projector_path=Path("p.gguf"),
    )
    proc = await asyncio.create_subprocess_exec(
        str(binary), "--help", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    known = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", out.decode()))
    flags = [a for a in server_args(spec, 1) if a.startswith("-")]
    flags += [f for signum in signal.Signals for fs in fallbacks_for(signum) for f in fs]
    draft = LoadSpec(
        Path("m.gguf"), num_ctx=512, num_gpu=0, draft_path=Path("d.gguf"), draft_max=8,
        draft_min=1, draft_p_min=0.5, rpc_workers=("127.0.0.1:50052",),
    )  # fmt: skip
    flags += [a for a in server_args(draft, 1) if a.startswith("-")]
    assert "--no-repack" in flags and "-md" in flags and "--rpc" in flags
    assert [f for f in flags if f not in known] == []
    # the speculation types corral passes are among the engine's --spec-type values
    types = re.search(r"--spec-type ([\w,-]+)", out.decode())
    assert types is not None
    assert {"draft-simple", *NGRAM_TYPES} <= set(types.group(1).split(","))


async def test_all_options_start(binary: Path, smollm2_path: Path) -> None:
    spec = spec_for(
        smollm2_path, num_parallel=2, num_batch=128, num_gpu=0, main_gpu=0, use_mmap=False
    )
    eng = await start_engine(spec, binary=binary, load_timeout=60)
    try:
        assert any("n_slots = 2, n_ctx_slot = 1024" in line for line in eng.process.tail())
        _, final = await collect(eng.complete("Hi", GenerationParams(sampling={"n_predict": 2})))
        assert final.done
    finally:
        await eng.stop()


async def test_chat_streams_in_order_with_timings(engine: LlamaServerEngine) -> None:
    pieces: list[Delta] = []
    params = GenerationParams(sampling={**GREEDY, "n_predict": 24})
    async for delta in engine.chat(user("Name three colours."), params):
        pieces.append(delta)
    *body, final = pieces
    assert body and all(d.content and not d.done for d in body)
    assert "".join(d.content for d in body).strip()
    assert final.done and final.done_reason in ("stop", "length")
    assert final.prompt_tokens > 0 and final.prompt_ms > 0
    assert final.eval_tokens > 0 and final.eval_ms > 0
    assert final.eval_tokens >= len(body) - 1  # one delta per token (utf-8 may merge a few)


async def test_prompt_cache_counts_only_new_tokens(engine: LlamaServerEngine) -> None:
    messages = user("Tell me a fact about the moon, in one short sentence.")
    params = GenerationParams(sampling={**GREEDY, "n_predict": 8})
    first_text, first = await collect(engine.chat(messages, params))
    again_text, again = await collect(engine.chat(messages, params))
    assert again_text == first_text
    # the whole prompt is in the cache: the engine evaluates only the last token again
    assert again.prompt_tokens <= 2 < first.prompt_tokens
    follow_up: list[dict[str, Any]] = [
        *messages,
        {"role": "assistant", "content": first_text},
        {"role": "user", "content": "And one about the sun?"},
    ]
    _, turn2 = await collect(engine.chat(follow_up, params))
    assert 0 < turn2.prompt_tokens < first.prompt_tokens + 20  # only the new turn


async def test_complete_raw_prompt(engine: LlamaServerEngine) -> None:
    params = GenerationParams(sampling={**GREEDY, "n_predict": 6})
    text, final = await collect(engine.complete("The capital of France is", params))
    assert "Paris" in text
    assert final.done and final.eval_tokens > 0 and final.prompt_tokens > 0


async def test_n_predict_limit_gives_length(engine: LlamaServerEngine) -> None:
    params = GenerationParams(sampling={**GREEDY, "n_predict": 5, "ignore_eos": True})
    _, final = await collect(engine.chat(user("Write a long story."), params))
    assert (final.done_reason, final.eval_tokens) == ("length", 5)
    _, final = await collect(engine.complete("Once upon a time", params))
    assert (final.done_reason, final.eval_tokens) == ("length", 5)


async def test_max_tokens_alias_and_n_predict_wins(engine: LlamaServerEngine) -> None:
    params = GenerationParams(sampling={**GREEDY, "max_tokens": 4, "ignore_eos": True})
    _, final = await collect(engine.chat(user("Write a long story."), params))
    assert (final.done_reason, final.eval_tokens) == ("length", 4)
    params.sampling["n_predict"] = 3
    _, final = await collect(engine.chat(user("Write a long story."), params))
    assert final.eval_tokens == 3


async def test_json_mode(engine: LlamaServerEngine) -> None:
    params = GenerationParams(sampling={**GREEDY, "n_predict": 64}, json_mode=True)
    prompt = 'Reply with a JSON object with one key "answer" whose value is "yes".'
    text, final = await collect(engine.chat(user(prompt), params))
    assert final.done_reason == "stop"
    assert isinstance(json.loads(text), dict)


async def test_json_schema_chat_and_complete(engine: LlamaServerEngine) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    params = GenerationParams(sampling={**GREEDY, "n_predict": 64}, json_schema=schema)
    text, _ = await collect(engine.chat(user("Describe a person."), params))
    assert set(json.loads(text)) == {"name", "age"}
    text, _ = await collect(engine.complete("A person as JSON:", params))
    assert set(json.loads(text)) == {"name", "age"}


async def test_too_long_prompt_is_bad_request(engine: LlamaServerEngine) -> None:
    with pytest.raises(BadRequest, match="does not fit the context"):
        await collect(engine.chat(user("hello " * 1500), GenerationParams()))
    assert engine.is_alive()


async def test_closing_the_stream_stops_generation(engine: LlamaServerEngine) -> None:
    params = GenerationParams(sampling={"n_predict": 2000, "ignore_eos": True})
    async with contextlib.aclosing(engine.chat(user("Tell me a long story."), params)) as stream:
        count = 0
        async for _ in stream:
            count += 1
            if count == 3:
                break
        assert await busy_slots(engine) == [True]
    deadline = time.monotonic() + 2
    while any(await busy_slots(engine)):
        assert time.monotonic() < deadline, "llama-server kept generating"
        await asyncio.sleep(0.02)
    _, final = await collect(engine.chat(user("Hi"), GenerationParams(sampling={"n_predict": 2})))
    assert final.done


async def test_log_file_written(engine: LlamaServerEngine) -> None:
    log_path = engine.process.log_path
    assert log_path is not None and log_path.name == "engine-smollm2_135m.log"
    text = log_path.read_text()
    assert "--port" in text and "model loaded" in text


async def test_stop_during_a_stream(binary: Path, smollm2_path: Path) -> None:
    eng = await start_engine(spec_for(smollm2_path), binary=binary, load_timeout=60)
    assert os.getpgid(eng.pid) == eng.pid != os.getpgrp()
    got: list[Delta] = []

    async def consume() -> None:
        params = GenerationParams(sampling={"n_predict": 5000, "ignore_eos": True})
        async for delta in eng.chat(user("Tell me a long story."), params):
            got.append(delta)

    task = asyncio.create_task(consume())
    assert await eventually(lambda: bool(got), 30)
    started = time.monotonic()
    await eng.stop()
    assert time.monotonic() - started < 3  # no 5 s grace period: SIGTERM is honoured
    assert eng.process.returncode == 0
    with pytest.raises(EngineCrashed, match="was stopped"):
        await task
    assert not eng.is_alive() and pid_gone(eng.pid)
    await eng.stop()  # idempotent


async def test_corrupt_gguf(binary: Path, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.gguf"
    bad.write_bytes(b"GGUF" + bytes([3, 0, 0, 0]) + os.urandom(1016))
    with pytest.raises(EngineStartError) as info:
        await start_engine(spec_for(bad, label="corrupt:1k"), binary=binary, load_timeout=60)
    message = info.value.message
    assert "corrupt:1k" in message and "exited with code" in message
    assert "failed to load model" in message


async def test_missing_model_file(binary: Path, tmp_path: Path) -> None:
    spec = spec_for(tmp_path / "missing.gguf", label="missing:1")
    with pytest.raises(EngineStartError, match="failed to open GGUF file") as info:
        await start_engine(spec, binary=binary, load_timeout=60)
    assert "missing:1" in info.value.message


async def test_taken_port_is_retried(
    binary: Path, smollm2_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        monkeypatch.setattr(engine_mod, "free_port", lambda: next(ports, None) or free_port())
        started = time.monotonic()
        eng = await start_engine(spec_for(smollm2_path), binary=binary, load_timeout=60)
        try:
            assert time.monotonic() - started < 1.5 + 5  # no 2 s health probe on the taken port
            assert eng.process.port != taken.getsockname()[1]
            assert eng.is_alive()
        finally:
            await eng.stop()


CHILD = """
import asyncio, sys, time
from pathlib import Path
from corral.hardware.cpu import read_cpu
from corral.runner.compat import EngineCompat, cpu_fingerprint
from corral.runner.engine import start_healing
from corral.runner.protocol import LoadSpec

async def main():
    spec = LoadSpec(Path(sys.argv[2]), num_ctx=512, num_thread=1, label="orphan-test")
    cpu = read_cpu()
    compat = EngineCompat(None, cpu_fingerprint(cpu))
    engine = await start_healing(
        spec, binary=Path(sys.argv[1]), compat=compat, cpu_flags=cpu.flags, load_timeout=60
    )
    print(engine.pid, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_kill_9_of_corral_leaves_no_engine(binary: Path, smollm2_path: Path) -> None:
    """PR_SET_PDEATHSIG: the kernel kills the engine when the process that started it dies."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(binary),
        str(smollm2_path),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        engine_pid = int(await asyncio.wait_for(child.stdout.readline(), 60))
        assert not pid_gone(engine_pid)
        os.kill(child.pid, signal.SIGKILL)
        await child.wait()
        assert await eventually(lambda: pid_gone(engine_pid), 5), (
            f"llama-server {engine_pid} outlived corral"
        )
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()

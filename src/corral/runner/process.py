"""One llama-server child process: spawn, log draining, readiness, and stopping.

The engine never outlives corral: it runs in its own session (a Ctrl-C in the terminal
reaches corral only, which then stops its engines), and the kernel SIGKILLs it when the
thread that spawned it dies (``PR_SET_PDEATHSIG``), so even ``kill -9`` of corral leaves
no orphan. :func:`kill_all_now` is registered with :mod:`atexit` as a last resort.

Mind the "thread" in PR_SET_PDEATHSIG: asyncio forks in the event loop's thread, so an
engine started from a loop running in a worker thread (e.g. a test client's portal
thread) is killed when that thread ends. corral's server loop runs in the main thread.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import ctypes
import ctypes.util
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import httpx

from corral.errors import EngineCrashedAtLoad, EngineStartError
from corral.runner.crashes import diagnose_exit

__all__ = ["LlamaServerProcess", "free_port", "kill_all_now", "log_file_name"]

log = logging.getLogger(__name__)

TAIL_LINES = 50
STOP_GRACE_S = 5.0
_HEALTH_POLL_S = 0.05
_DRAIN_WAIT_S = 2.0
_BIND_FAILED = "couldn't bind"

_live: set[LlamaServerProcess] = set()  # not weak: a dropped, unstopped engine is killed too
_atexit_registered = False


def free_port() -> int:
    """A loopback port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_file_name(label: str) -> str:
    """``engine-<label>.log`` with anything but letters, digits, ``.``, ``_``, ``-`` replaced."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "model"
    return f"engine-{safe}.log"


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn that makes the kernel SIGKILL the child when its parent thread dies.

    libc and ``prctl`` are looked up here, in the parent, so that the forked child only
    calls into C (no imports, no allocation-heavy work between fork and exec).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    pr_set_pdeathsig = 1
    parent = os.getpid()
    sigkill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


_LOG_PREFIX = re.compile(r"^\d+\.\d+\.\d+\.\d+ (?=[A-Z] )")


def _excerpt(lines: list[str], most: int = 12) -> str:
    """The error lines ("E" level) of llama-server output, else its last lines."""
    bare = [_LOG_PREFIX.sub("", line) for line in lines]
    errors = [line for line in bare if line.startswith("E ")]
    chosen = list(dict.fromkeys(errors))[-most:] if errors else bare[-most:]
    return (":\n" + "\n".join(f"  {line}" for line in chosen)) if chosen else ""


def kill_all_now() -> None:
    """SIGKILL every engine this process started and has not stopped (atexit, signals)."""
    for proc in list(_live):
        proc.kill_now()


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(kill_all_now)
        _atexit_registered = True


class LlamaServerProcess:
    """A running llama-server; create it with :meth:`spawn`, then :meth:`wait_ready`."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        *,
        label: str,
        port: int,
        log_path: Path | None,
    ) -> None:
        self._proc = proc
        self.label = label
        self.port = port
        self.log_path = log_path
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._log_file: IO[bytes] | None = None
        if log_path is not None:
            try:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log_file = log_path.open("ab")
            except OSError as exc:
                log.warning("cannot write engine log %s: %s", log_path, exc)
        self._drain_task = asyncio.create_task(self._drain(), name=f"engine-log-{label}")
        self._stop_lock = asyncio.Lock()

    @classmethod
    async def spawn(
        cls,
        binary: Path,
        args: Sequence[str],
        *,
        label: str,
        port: int,
        log_dir: Path | None = None,
    ) -> LlamaServerProcess:
        """Start ``binary args`` in a new session, with its output piped to us."""
        log_path = log_dir / log_file_name(label) if log_dir is not None else None
        if log_path is not None:
            with contextlib.suppress(OSError):
                log_path.parent.mkdir(parents=True, exist_ok=True)
                with log_path.open("a", encoding="utf-8") as f:
                    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                    f.write(f"\n--- corral {stamp}: {binary} {' '.join(args)}\n")
        try:
            proc = await asyncio.create_subprocess_exec(
                str(binary),
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_pdeathsig_preexec(),
                # CUDA numbers GPUs fastest-first by default, NVML (our inventory, hence
                # --tensor-split and -mg) by PCI bus: make the engine count as we do.
                env={"CUDA_DEVICE_ORDER": "PCI_BUS_ID", **os.environ},
            )
        except OSError as exc:
            raise EngineStartError(f"cannot start {binary} for {label}: {exc}") from exc
        self = cls(proc, label=label, port=port, log_path=log_path)
        _live.add(self)
        _register_atexit()
        log.debug("engine for %s started, pid %d port %d", label, proc.pid, port)
        return self

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def is_alive(self) -> bool:
        return self._proc.returncode is None

    def tail(self, n: int = TAIL_LINES) -> list[str]:
        """The last ``n`` lines the engine printed."""
        lines = list(self._tail)
        return lines[-n:] if n < len(lines) else lines

    async def _drain(self) -> None:
        """Read the engine's output until EOF: keep a tail, append all to the log file."""
        stream = self._proc.stdout
        assert stream is not None
        pending = b""
        try:
            while chunk := await stream.read(65536):
                if self._log_file is not None:
                    with contextlib.suppress(OSError):
                        self._log_file.write(chunk)
                        self._log_file.flush()
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    self._remember(line)
                if len(pending) > 65536:  # no newline in sight: keep what we have
                    self._remember(pending)
                    pending = b""
            if pending:
                self._remember(pending)
        finally:
            if self._log_file is not None:
                with contextlib.suppress(OSError):
                    self._log_file.close()
                self._log_file = None

    def _remember(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip()
        if text:
            self._tail.append(text)

    async def _output_done(self) -> None:
        """Wait (a little) until all output has been read, so the tail is complete."""
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._drain_task), _DRAIN_WAIT_S)

    def start_error(self, what: str) -> EngineStartError:
        """An EngineStartError naming the model, with the engine's error lines (or its last
        lines when it printed no error), without their timestamps."""
        return EngineStartError(f"engine for {self.label} {what}" + _excerpt(self.tail()))

    def exit_error(self, cpu_flags: tuple[str, ...] = ()) -> EngineStartError:
        """The error for an engine that exited while loading: an exit by a signal says in
        words what it means (:class:`EngineCrashedAtLoad`)."""
        code = self._proc.returncode
        diagnosis = diagnose_exit(code, cpu_flags)
        if diagnosis is None:
            return self.start_error(f"exited with code {code} while loading")
        return EngineCrashedAtLoad(
            f"{diagnosis.sentence()} while loading {self.label}" + _excerpt(self.tail()),
            signum=diagnosis.signum,
        )

    async def wait_ready(self, cpu_flags: tuple[str, ...] = ()) -> None:
        """Poll ``GET /health`` until it answers 200 (503 while loading); raise
        :class:`EngineStartError` if the engine exits first. Bound it with asyncio.timeout."""
        exited = asyncio.ensure_future(self._proc.wait())
        transport = httpx.AsyncHTTPTransport(retries=0)
        try:
            async with httpx.AsyncClient(
                base_url=self.base_url, transport=transport, timeout=2.0, trust_env=False
            ) as http:
                while True:
                    if self._proc.returncode is not None:
                        await self._output_done()
                        raise self.exit_error(cpu_flags)
                    # race each probe against the exit: if the engine could not bind its
                    # port, whoever holds the port may never answer
                    probe = asyncio.ensure_future(http.get("/health"))
                    try:
                        await asyncio.wait({probe, exited}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        if not probe.done():
                            probe.cancel()
                            await asyncio.wait({probe})
                    if (
                        probe.done()
                        and not probe.cancelled()
                        and probe.exception() is None
                        and probe.result().status_code == 200
                        and self._proc.returncode is None
                    ):
                        return
                    if not exited.done():  # 503 while loading, or not listening yet
                        await asyncio.wait({exited}, timeout=_HEALTH_POLL_S)
        finally:
            exited.cancel()

    def bind_failed(self) -> bool:
        return any(_BIND_FAILED in line for line in self._tail)

    def kill_now(self) -> None:
        """SIGKILL the engine without waiting: safe in atexit and signal handlers."""
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    async def kill(self) -> None:
        """SIGKILL the engine and wait for it to exit."""
        self.kill_now()
        await self._proc.wait()
        await self._output_done()
        _live.discard(self)

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, sig)

    async def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; wait for the exit. Idempotent."""
        async with self._stop_lock:
            try:
                if self._proc.returncode is None:
                    self._signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(self._proc.wait(), grace)
                    except TimeoutError:
                        log.warning("engine for %s ignored SIGTERM, killing it", self.label)
                        self._signal(signal.SIGKILL)
                        await self._proc.wait()
                await self._output_done()
            finally:
                if self._proc.returncode is None:  # cancelled while waiting
                    self.kill_now()
                _live.discard(self)

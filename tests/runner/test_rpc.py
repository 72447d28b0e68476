"""Worker endpoints, the loopback rule, and probing workers that are gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.cli.main import main
from corral.config import Settings
from corral.errors import InvalidOption
from corral.runner.rpc import RpcWorkers, is_loopback, parse_endpoints, reachable
from tests.live import free_port


def test_endpoints_are_checked() -> None:
    assert parse_endpoints("10.0.0.2:50052, [::1]:50053,") == ["10.0.0.2:50052", "[::1]:50053"]
    for bad in ("10.0.0.2", ":50052", "host:port", "host:70000"):
        with pytest.raises(InvalidOption, match="is not host:port"):
            parse_endpoints(bad)
    assert Settings(rpc_workers="a:1,b:2").rpc_workers == ["a:1", "b:2"]
    with pytest.raises(ValueError, match="is not host:port"):
        Settings(rpc_workers="nope")


def test_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.2")


def test_a_worker_that_is_gone_is_left_out(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    assert not reachable(dead)
    missing_binary = tmp_path / "never-run"
    assert RpcWorkers([dead], lambda: missing_binary).devices() == []
    assert RpcWorkers([dead], lambda: missing_binary).devices(busy=[dead]) == []


def test_worker_refuses_a_public_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--host", "0.0.0.0"]) == 2
    assert "no authentication" in capsys.readouterr().err

"""Fixtures: a fake server, and ``corral(*argv)`` running the CLI against it."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import pytest

from corral.cli.main import main
from corral.client import Client
from tests.cli.fakes import FakeServer


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def corral(server: FakeServer) -> Callable[..., int]:
    """``corral(*argv, stdin=...)`` runs the CLI against the fake server."""

    def run(*argv: str, stdin: io.StringIO | None = None) -> int:
        return main(
            list(argv),
            client_factory=lambda: Client(
                "http://corral.test", transport=httpx.MockTransport(server)
            ),
            stdin=stdin if stdin is not None else io.StringIO(""),
        )

    return run

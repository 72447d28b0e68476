"""The container tier pulls from the registry tier's real docker-registry."""

from __future__ import annotations

from tests.registry.conftest import published, registry

__all__ = ["published", "registry"]

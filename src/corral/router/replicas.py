"""The replicas behind the router, and what it knows of each: up or not, which models are
loaded, how many requests it holds. A probe every ``interval`` seconds reads
``/health/ready`` and ``/api/ps``; a request that cannot connect marks its replica down at
once, so a dead replica is skipped before the next probe."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

__all__ = ["Replica", "ReplicaSet"]

log = logging.getLogger(__name__)

_PROBE_TIMEOUT_S = 2.0


@dataclass
class Replica:
    url: str
    healthy: bool = False
    loaded: set[str] = field(default_factory=set)  # model names /api/ps lists
    in_flight: int = 0  # requests the router has sent and not seen end


class ReplicaSet:
    def __init__(self, urls: Sequence[str], client: httpx.AsyncClient, interval: float) -> None:
        self.replicas = {url.rstrip("/"): Replica(url.rstrip("/")) for url in urls}
        self._client = client
        self.interval = interval

    def healthy(self) -> list[Replica]:
        return [r for r in self.replicas.values() if r.healthy]

    def mark_down(self, replica: Replica, why: str) -> None:
        if replica.healthy:
            log.warning("replica %s is down (%s); skipping it", replica.url, why)
        replica.healthy = False

    async def probe(self, replica: Replica) -> None:
        try:
            ready = await self._client.get(f"{replica.url}/health/ready", timeout=_PROBE_TIMEOUT_S)
            ps = await self._client.get(f"{replica.url}/api/ps", timeout=_PROBE_TIMEOUT_S)
        except httpx.HTTPError as exc:
            self.mark_down(replica, f"{type(exc).__name__}")
            return
        if ready.status_code != 200:
            self.mark_down(replica, f"/health/ready answered {ready.status_code}")
            return
        if not replica.healthy:
            log.info("replica %s is up", replica.url)
        replica.healthy = True
        try:
            replica.loaded = {m["name"] for m in ps.json().get("models", [])}
        except (ValueError, KeyError, TypeError, AttributeError):
            replica.loaded = set()

    async def probe_all(self) -> None:
        await asyncio.gather(*(self.probe(r) for r in self.replicas.values()))

    async def watch(self) -> None:
        """Probe every replica every ``interval`` seconds, until cancelled."""
        while True:
            await self.probe_all()
            await asyncio.sleep(self.interval)

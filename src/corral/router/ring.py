"""Consistent hashing with bounded loads (CHWBL): a key keeps going to the same replica, so
that replica's prompt cache holds the conversation, unless that replica already carries more
than its share of the load; then the key moves on to the next replica on the ring.
``least_loaded`` is for a key no replica can have cached yet (a conversation's first turn):
there is nothing to keep, so the spread wins.

With ``n`` replicas and ``L`` requests in flight (this one included), no replica takes more
than ``ceil(c * L / n)``; ``c = 1.25`` is the factor KubeAI and the original paper use.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence

__all__ = ["HashRing"]

_VIRTUAL_NODES = 100  # per replica: spreads keys evenly over a handful of replicas


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class HashRing:
    def __init__(self, nodes: Sequence[str], load_factor: float = 1.25) -> None:
        self.nodes = list(dict.fromkeys(nodes))
        self.load_factor = load_factor
        points = sorted(
            (_hash(f"{node}#{i}"), node) for node in self.nodes for i in range(_VIRTUAL_NODES)
        )
        self._hashes = [h for h, _ in points]
        self._owners = [node for _, node in points]

    def bound(self, load: Mapping[str, int], among: Sequence[str]) -> int:
        """The most requests one of ``among`` may carry, this one included."""
        total = sum(load.get(node, 0) for node in among) + 1
        return math.ceil(self.load_factor * total / len(among))

    def _clockwise(self, key: str, allowed: set[str]) -> Iterator[str]:
        """``allowed`` nodes in ring order from the key's hash, each once."""
        start = bisect.bisect(self._hashes, _hash(key))
        seen: set[str] = set()
        for i in range(len(self._owners)):
            node = self._owners[(start + i) % len(self._owners)]
            if node in allowed and node not in seen:
                seen.add(node)
                yield node

    def pick(self, key: str, load: Mapping[str, int], among: Sequence[str] | None = None) -> str:
        """The replica for ``key``: the first one clockwise from the key's hash, among
        ``among`` (default: all), whose load is under the bound."""
        allowed = self._allowed(among)
        bound = self.bound(load, list(allowed))
        order = list(self._clockwise(key, allowed))
        return next((n for n in order if load.get(n, 0) + 1 <= bound), order[0])

    def least_loaded(
        self, key: str, load: Mapping[str, int], among: Sequence[str] | None = None
    ) -> str:
        """The least loaded of ``among``; between equals, the first clockwise from the key
        (so with no load at all this is the key's home on the ring)."""
        allowed = self._allowed(among)
        order = list(self._clockwise(key, allowed))
        return min(order, key=lambda n: load.get(n, 0))  # min keeps the first of equals

    def _allowed(self, among: Sequence[str] | None) -> set[str]:
        allowed = set(self.nodes if among is None else among)
        if not allowed:
            raise ValueError("no replica to pick from")
        return allowed

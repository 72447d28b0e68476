"""Consistent hashing with bounded loads (CHWBL): a key keeps going to the same replica, so
that replica's prompt cache holds the conversation, unless that replica already carries more
than its share of the load; then the key moves on to the next replica on the ring.

With ``n`` replicas and ``L`` requests in flight (this one included), no replica takes more
than ``ceil(c * L / n)``; ``c = 1.25`` is the factor KubeAI and the original paper use.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Mapping, Sequence

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

    def pick(self, key: str, load: Mapping[str, int], among: Sequence[str] | None = None) -> str:
        """The replica for ``key``: the first one clockwise from the key's hash, among
        ``among`` (default: all), whose load is under the bound."""
        allowed = set(self.nodes if among is None else among)
        if not allowed:
            raise ValueError("no replica to pick from")
        total = sum(load.get(node, 0) for node in allowed) + 1
        bound = math.ceil(self.load_factor * total / len(allowed))
        start = bisect.bisect(self._hashes, _hash(key))
        fallback = None
        for i in range(len(self._owners)):
            node = self._owners[(start + i) % len(self._owners)]
            if node not in allowed:
                continue
            fallback = fallback or node
            if load.get(node, 0) + 1 <= bound:
                return node
        assert fallback is not None
        return fallback

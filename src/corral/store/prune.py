"""Remove blobs no manifest references any more, and never one that is still in use.

"In use" is judged conservatively: every ``sha256:<hex>`` string anywhere in any file under
``manifests/`` counts as a reference, whatever that file's format (a manifest of another
tool, one that does not parse, an index), and callers add the digests that in-flight work
(a create, a pull) holds but has not written a manifest for yet.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from corral.errors import StoreError
from corral.store.models import Store

__all__ = ["referenced_digests", "remove_unreferenced"]

_DIGEST = re.compile(rb"sha256[:-]([0-9a-f]{64})")


def referenced_digests(store: Store) -> set[str]:
    """Every digest mentioned by a file under ``manifests/`` (temporary files included)."""
    root = store.manifests.root
    found: set[str] = set()
    if not root.is_dir():
        return found
    try:
        for path in root.rglob("*"):
            if path.is_file():
                found.update(f"sha256:{m.decode()}" for m in _DIGEST.findall(path.read_bytes()))
    except OSError as exc:  # an unreadable manifest might reference anything: prune nothing
        raise StoreError(f"cannot read the manifests to prune blobs: {exc}") from exc
    return found


def remove_unreferenced(
    store: Store, candidates: Iterable[str], *, keep: Collection[str] = ()
) -> list[str]:
    """Remove the ``candidates`` that no manifest references and ``keep`` does not hold.
    Returns the digests removed."""
    in_use = referenced_digests(store) | set(keep)
    removed = []
    for digest in sorted(set(candidates) - in_use):
        if store.blobs.exists(digest):
            store.blobs.remove(digest)
            removed.append(digest)
    return removed

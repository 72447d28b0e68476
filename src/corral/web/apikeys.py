"""API keys created in the web UI: shown once, stored as sha256 hashes, revocable.

:class:`WebKeys` is the second key source of :class:`corral.api.security.ApiKeyMiddleware`
(beside ``CORRAL_API_KEYS``). It keeps a :class:`~corral.auth.keys.KeyRing` of the stored
hashes in memory, rebuilt on every create and revoke, so a presented key is checked with the
same constant-time comparison as the configured ones and no request touches the database.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from corral.auth.keys import KeyRing, Scope, hash_key
from corral.web.accounts import NotFound
from corral.web.db import Database

__all__ = ["KEY_PREFIX", "WebKeys"]

KEY_PREFIX = "corral-"


class WebKeys:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._ring = KeyRing()
        self._reload()

    def _reload(self) -> None:
        rows = self.db.query("SELECT key_hash, scope FROM api_keys")
        self._ring = KeyRing(tuple((bytes(r["key_hash"]), Scope(r["scope"])) for r in rows))

    def __bool__(self) -> bool:
        return bool(self._ring)

    def scope_of(self, key: str) -> Scope | None:
        return self._ring.scope_of(key)

    def create(self, name: str, scope: Scope, created_by: int | None) -> dict[str, Any]:
        """A new key; the returned ``key`` is the only time its value is seen."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        cursor = self.db.write(
            "INSERT INTO api_keys (name, prefix, key_hash, scope, created_by, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name.strip() or "key", key[:12], hash_key(key), scope.value, created_by, self.clock()),
        )
        self._reload()
        return {**self.get(int(cursor.lastrowid or 0)), "key": key}

    def get(self, key_id: int) -> dict[str, Any]:
        for item in self.list():
            if item["id"] == key_id:
                return item
        raise NotFound("API key not found")

    def list(self) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT k.id, k.name, k.prefix, k.scope, k.created_at, u.username "
            "FROM api_keys k LEFT JOIN users u ON u.id = k.created_by ORDER BY k.id"
        )
        return [
            {
                "id": r["id"],
                "name": r["name"],
                "prefix": r["prefix"],
                "scope": r["scope"],
                "created_at": r["created_at"],
                "created_by": r["username"],
            }
            for r in rows
        ]

    def revoke(self, key_id: int) -> None:
        cursor = self.db.write("DELETE FROM api_keys WHERE id = ?", (key_id,))
        if cursor.rowcount == 0:
            raise NotFound("API key not found")
        self._reload()

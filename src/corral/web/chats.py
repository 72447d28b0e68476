"""Conversations, one row per chat, owned by one user.

Messages are kept as one JSON array per chat: the page always reads and writes a chat whole
(regenerate and edit-and-resend rewrite its tail), and a 135M-model chat is small.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from corral.web.accounts import NotFound
from corral.web.db import Database

__all__ = ["ChatPatch", "Chats", "StoredMessage"]


class StoredMessage(BaseModel):
    role: str = Field(pattern="^(system|user|assistant|tool)$")
    content: str = Field(default="", max_length=1_000_000)
    # what the page shows under an answer: tokens/s, durations, done_reason
    meta: dict[str, Any] | None = None


class ChatPatch(BaseModel):
    title: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=300)
    system: str | None = Field(default=None, max_length=100_000)
    options: dict[str, Any] | None = None
    messages: list[StoredMessage] | None = Field(default=None, max_length=10_000)


def _summary(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "model": row["model"],
        "updated_at": row["updated_at"],
    }


def _full(row: sqlite3.Row) -> dict[str, Any]:
    return {
        **_summary(row),
        "system": row["system"],
        "options": json.loads(row["options"]),
        "messages": json.loads(row["messages"]),
        "created_at": row["created_at"],
    }


class Chats:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    def list(self, user_id: int, query: str = "") -> list[dict[str, Any]]:
        """Newest first; ``query`` matches titles and message text (case-insensitive)."""
        if query.strip():
            pattern = "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%") + "%"
            pattern = pattern.replace("_", "\\_")
            rows = self.db.query(
                "SELECT * FROM chats WHERE user_id = ? AND (title LIKE ? ESCAPE '\\' "
                "OR messages LIKE ? ESCAPE '\\') ORDER BY updated_at DESC",
                (user_id, pattern, pattern),
            )
        else:
            rows = self.db.query(
                "SELECT * FROM chats WHERE user_id = ? ORDER BY updated_at DESC", (user_id,)
            )
        return [_summary(r) for r in rows]

    def create(self, user_id: int, patch: ChatPatch) -> dict[str, Any]:
        chat_id = secrets.token_hex(8)
        now = self.clock()
        self.db.write(
            "INSERT INTO chats (id, user_id, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            (chat_id, user_id, "New chat", now, now),
        )
        return self.update(user_id, chat_id, patch)

    def get(self, user_id: int, chat_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT * FROM chats WHERE id = ? AND user_id = ?", (chat_id, user_id))
        if row is None:
            raise NotFound("chat not found")
        return _full(row)

    def update(self, user_id: int, chat_id: str, patch: ChatPatch) -> dict[str, Any]:
        self.get(user_id, chat_id)  # 404 for another user's chat
        values: dict[str, Any] = {}
        if patch.title is not None:
            values["title"] = patch.title.strip() or "New chat"
        if patch.model is not None:
            values["model"] = patch.model
        if patch.system is not None:
            values["system"] = patch.system
        if patch.options is not None:
            values["options"] = json.dumps(patch.options)
        if patch.messages is not None:
            values["messages"] = json.dumps(
                [m.model_dump(exclude_none=True) for m in patch.messages]
            )
        values["updated_at"] = self.clock()
        assignments = ", ".join(f"{column} = ?" for column in values)
        self.db.write(
            f"UPDATE chats SET {assignments} WHERE id = ? AND user_id = ?",
            (*values.values(), chat_id, user_id),
        )
        return self.get(user_id, chat_id)

    def delete(self, user_id: int, chat_id: str) -> None:
        cursor = self.db.write("DELETE FROM chats WHERE id = ? AND user_id = ?", (chat_id, user_id))
        if cursor.rowcount == 0:
            raise NotFound("chat not found")

"""Uploaded files, kept in memory per emulator instance up to a size cap.

    store = FileStore(max_bytes=256 << 20)
    stored = store.add("batch.jsonl", "batch", b'{"custom_id": ...}\\n')
    stored.public()          # the File object the OpenAI SDK reads: id, object, bytes, created_at, filename, ...
    store.get(stored.id).content

Ids look like Azure's (`file-` and 32 hex digits). Past `max_bytes` in all, an upload is refused with a 400, as
Azure refuses a file over its own limit.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest, ObjectNotFound

__all__ = ["PURPOSES", "FileStore", "StoredFile", "page"]

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@dataclass(slots=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


class FileStore:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._files: dict[str, StoredFile] = {}
        self._size = 0

    def add(self, filename: str, purpose: str, content: bytes) -> StoredFile:
        if self._size + len(content) > self.max_bytes:
            raise InvalidRequest(
                f"The emulator holds at most {self.max_bytes} bytes of files; delete some first.",
                param="file",
                code="file_too_large",
            )
        stored = StoredFile(f"file-{uuid.uuid4().hex}", filename, purpose, content, int(time.time()))
        self._files[stored.id] = stored
        self._size += len(content)
        return stored

    def get(self, file_id: str) -> StoredFile:
        stored = self._files.get(file_id)
        if stored is None:
            raise ObjectNotFound(f"No such File object: {file_id}", param="file_id", code="not_found")
        return stored

    def delete(self, file_id: str) -> dict[str, Any]:
        stored = self.get(file_id)
        del self._files[file_id]
        self._size -= len(stored.content)
        return {"id": file_id, "object": "file", "deleted": True}

    def list(self, purpose: str | None, limit: int, after: str | None, order: str) -> dict[str, Any]:
        files = [f for f in self._files.values() if purpose is None or f.purpose == purpose]
        return page([f.public() for f in files], limit, after, order)


def page(items: list[dict[str, Any]], limit: int, after: str | None, order: str) -> dict[str, Any]:
    """One page of a cursor list, newest first unless `order=asc` (creation order breaks ties)."""
    if order == "desc":
        items = items[::-1]
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    shown = items[:limit]
    return {
        "object": "list",
        "data": shown,
        "first_id": shown[0]["id"] if shown else None,
        "last_id": shown[-1]["id"] if shown else None,
        "has_more": len(items) > limit,
    }

"""Batches: created from an uploaded `batch` file, done in well under a second, answered by the emulator itself.

    book = BatchBook(files, run_line)
    batch = book.create({"input_file_id": "file-...", "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    book.get(batch["id"])["status"]      # validating -> in_progress -> finalizing -> completed, by elapsed time

When a batch is first seen past its in-progress time, every input line is run through the emulator's own
operation (`run_line`: the deployment is the line's `model`, as on Azure) and the answers become the output file
(`batch_output`), one line per request: `{"id", "custom_id", "response": {"status_code", "request_id", "body"},
"error": null}`. Lines that fail go to the error file the same way with their error status and body. Cancel moves a
running batch to `cancelling`, then `cancelled`; a finished one answers 409.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .errors import Conflict, InvalidRequest, ObjectNotFound
from .files import FileStore, page

__all__ = ["BATCH_ENDPOINTS", "BatchBook", "LineRunner"]

BATCH_ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/responses", "/chat/completions", "/embeddings")
# Seconds after creation at which a batch is seen in each state: quick enough for tests that poll.
_IN_PROGRESS_AT, _FINALIZING_AT, _COMPLETED_AT = 0.05, 0.15, 0.25
LineRunner = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]  # (url, body) -> (status, body)


@dataclass(slots=True)
class _Batch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None
    created: float
    cancelled: float | None = None
    public: dict[str, Any] = field(default_factory=dict)
    done: bool = False


class BatchBook:
    def __init__(self, files: FileStore, run_line: LineRunner, clock: Callable[[], float] = time.time) -> None:
        self._files = files
        self._run_line = run_line
        self._clock = clock
        self._batches: dict[str, _Batch] = {}

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        file_id = body.get("input_file_id")
        if not isinstance(file_id, str) or not file_id:
            raise InvalidRequest(
                "Missing required parameter: 'input_file_id'.", param="input_file_id", code="missing_required_parameter"
            )
        stored = self._files.get(file_id)
        if stored.purpose != "batch":
            raise InvalidRequest(f"File {file_id} was not uploaded with purpose 'batch'.", param="input_file_id")
        endpoint = body.get("endpoint")
        if endpoint not in BATCH_ENDPOINTS:
            raise InvalidRequest(f"Invalid 'endpoint': expected one of {', '.join(BATCH_ENDPOINTS)}.", param="endpoint")
        window = body.get("completion_window", "24h")
        if window not in ("24h",):
            raise InvalidRequest("Invalid 'completion_window': expected '24h'.", param="completion_window")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidRequest("Invalid 'metadata': expected an object.", param="metadata")
        batch = _Batch(f"batch_{uuid.uuid4().hex}", file_id, endpoint, window, metadata, self._clock())
        self._batches[batch.id] = batch
        return self._view(batch)

    def get(self, batch_id: str) -> dict[str, Any]:
        return self._view(self._find(batch_id))

    def list(self, limit: int, after: str | None) -> dict[str, Any]:
        return page([self._view(batch) for batch in self._batches.values()], limit, after, "desc")

    def cancel(self, batch_id: str) -> dict[str, Any]:
        batch = self._find(batch_id)
        status = self._view(batch)["status"]
        if status in ("completed", "failed", "expired", "cancelled"):
            raise Conflict(f"Cannot cancel a batch with status '{status}'.", code="batch_not_cancellable")
        if batch.cancelled is None:
            batch.cancelled = self._clock()
        view = self._view(batch)
        return {**view, "status": "cancelling"} if view["status"] == "cancelled" else view

    def _find(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise ObjectNotFound(f"No such Batch object: {batch_id}", param="batch_id", code="not_found")
        return batch

    def _view(self, batch: _Batch) -> dict[str, Any]:
        if batch.done:
            return batch.public
        now = self._clock()
        created = batch.created
        elapsed = now - created
        view: dict[str, Any] = {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "errors": None,
            "input_file_id": batch.input_file_id,
            "completion_window": batch.completion_window,
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(created),
            "in_progress_at": None,
            "expires_at": int(created) + 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": batch.metadata,
        }
        if batch.cancelled is not None:
            view.update(status="cancelled", cancelling_at=int(batch.cancelled), cancelled_at=int(batch.cancelled))
            batch.public, batch.done = view, True
            return view
        if elapsed >= _IN_PROGRESS_AT:
            view.update(status="in_progress", in_progress_at=int(created + _IN_PROGRESS_AT))
        if elapsed >= _FINALIZING_AT:
            view.update(status="finalizing", finalizing_at=int(created + _FINALIZING_AT))
        if elapsed >= _COMPLETED_AT:
            view.update(status="completed", completed_at=int(created + _COMPLETED_AT), **self._run(batch))
            batch.public, batch.done = view, True
        return view

    def _run(self, batch: _Batch) -> dict[str, Any]:
        """Answer every line; the output and error files and the counts."""
        answers: list[bytes] = []
        errors: list[bytes] = []
        for number, raw in enumerate(self._files.get(batch.input_file_id).content.splitlines(), 1):
            if not raw.strip():
                continue
            line = orjson.loads(raw)
            request_id = str(uuid.uuid4())
            url, body = line.get("url", batch.endpoint), dict(line.get("body") or {})
            body.pop("stream", None)
            status, answer = self._run_line(url, body)
            out = {
                "id": f"batch_req_{uuid.uuid4().hex}",
                "custom_id": line.get("custom_id", f"line-{number}"),
                "response": {"status_code": status, "request_id": request_id, "body": answer},
                "error": None,
            }
            (answers if status == 200 else errors).append(orjson.dumps(out) + b"\n")
        fields: dict[str, Any] = {
            "request_counts": {"total": len(answers) + len(errors), "completed": len(answers), "failed": len(errors)}
        }
        if answers:
            fields["output_file_id"] = self._files.add(f"{batch.id}_output.jsonl", "batch_output", b"".join(answers)).id
        if errors:
            fields["error_file_id"] = self._files.add(f"{batch.id}_error.jsonl", "batch_output", b"".join(errors)).id
        return fields

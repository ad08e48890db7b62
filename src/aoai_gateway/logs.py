"""Structured logs: one JSON object per line on stderr, and the access-log record of each request.

    configure_logging(settings.logging)
    access_log(request_id="...", method="POST", route="/v1/chat/completions", status=200, ...)

Nothing here ever receives a header, key, prompt or completion; the access log takes named fields only.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from .config import LoggingSettings

ACCESS = logging.getLogger("aoai_gateway.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(settings: LoggingSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("aoai_gateway")
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
    root.propagate = False
    ACCESS.disabled = not settings.access_log


def access_log(**fields: Any) -> None:
    if ACCESS.isEnabledFor(logging.INFO):
        ACCESS.info("request", extra={"fields": fields})

"""Which upstream outcomes are worth another deployment, and how long a throttled one must rest.

retryable_status(429)                      # True
retry_after_seconds(raw_headers, now)      # from retry-after-ms, x-ms-retry-after-ms or Retry-After
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable

# Azure's throttling and transient failures. Never 400/401/403/404: another deployment would say the same,
# and a content-filter result (a 400, or a 200 with finish_reason "content_filter") is an answer, not a fault.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

_MS_HEADERS = (b"retry-after-ms", b"x-ms-retry-after-ms")


def retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES


def retry_after_seconds(raw_headers: Iterable[tuple[bytes, bytes]], now: float | None = None) -> float | None:
    """The upstream's own wait, most precise header first; None when it named none."""
    headers = {name.lower(): value for name, value in raw_headers}
    for name in _MS_HEADERS:
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) / 1000)
            except ValueError:
                continue
    value = headers.get(b"retry-after")
    if value is None:
        return None
    text = value.decode("latin-1").strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))

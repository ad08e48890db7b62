"""What can go wrong with a call, as one small tree.

    CallError
    ├── SourceError       the recording cannot be listed or read
    ├── ModelCallError    a model refused or failed
    ├── ExtractionError   no answer valid against the schema
    ├── SchemaError       the user's schema file is unusable
    └── QueryError        a `calls list` / `calls show` filter the store refuses (exit status 2)

    raise ModelCallError("gpt-4o answered 429: rate limited", retryable=True)

`retryable` decides between a retry with back-off and a final `failed`: a bad file or a schema the model cannot
satisfy is not worth paying for again; a throttled or unreachable model is.
"""

from __future__ import annotations


class CallError(Exception):
    retryable = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable


class SourceError(CallError):
    """The recording cannot be listed or read (gone, unreadable, bad credentials)."""

    retryable = True


class ModelCallError(CallError):
    """The transcription or chat model refused or failed: its HTTP status and Retry-After, when it answered."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.retry_after = retry_after
        self.status = status


class ExtractionError(CallError):
    """No answer valid against the schema after the allowed re-asks."""


class SchemaError(CallError):
    """The user's schema file is unusable."""


class QueryError(CallError):
    """A filter that cannot be run as given: an unknown field, a malformed FIELD=VALUE, a bad --since."""

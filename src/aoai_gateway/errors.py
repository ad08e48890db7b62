"""The gateway's exception tree, rendered as OpenAI-shaped errors in one place.

    raise ModelNotFound("gpt-5", available=["gpt-4o"])   # -> 404 {"error": {...}}

GatewayError                      every error the gateway itself answers with
├── InvalidRequest          400   malformed JSON, missing or non-string `model`, bad form data
├── AuthenticationError     401   no credentials, or a gateway key that is unknown, revoked or expired
├── PermissionDenied        403   a model outside the key's allowlist, an event outside its window
├── NotFound                404
│   ├── ModelNotFound       404   model (or deployment) not configured; lists what exists
│   └── RouteNotFound       404   no such endpoint
├── MethodNotAllowed        405
├── RequestTimeout          408   the request head or body stopped arriving (server.*_timeout_seconds)
├── Conflict                409   an attendee registering for an event a second time
├── PayloadTooLarge         413
├── UnsupportedMediaType    415
├── RangeNotSatisfiable     416   a Range header outside a recording the console plays (Content-Range: bytes */size)
├── NoDeploymentAvailable   429   every deployment of the model is cooling down or has an open circuit
├── RateLimited             429   a key's requests or tokens per minute/day are used up (Retry-After)
├── QuotaExceeded           429   a key's total token budget is spent (no Retry-After: it does not come back)
├── ModelBusy               429   a local model's worker pool and queue are full (Retry-After)
├── HeadersTooLarge         431   more header bytes or fields than `server.max_header_bytes` / `max_headers`
├── ModelUnavailable        503   a local model is shutting down
├── TooManyConnections      503   the process holds `server.max_connections` already (Retry-After)
├── UpstreamPoolFull        503   no upstream connection freed up within `upstream.pool_wait_seconds` (Retry-After)
├── DependencyUnavailable   503   a backing service is down; names it (Retry-After)
│   ├── LimitsUnavailable   503   Redis, which holds the rate-limit counters (`limits_unavailable`)
│   ├── DatabaseUnavailable 503   the database of keys, events and the ledger (`key_store_unavailable` for a key
│   │                             it could not check, `usage_ledger_full`, else `database_unavailable`)
│   └── MicrophoneUnavailable 503 `aoai-gateway assistant --mic` found no ffmpeg or no device to record from
├── StorageFull             507   the database's disk is full (`insufficient_storage`)
├── ModelAnswerError      4xx/5xx  a model the assistant called in-process answered with an error: its status
│                                 and message pass on (`assistant_model_error`)
└── UpstreamError                 the upstream could not give an answer at all
    ├── UpstreamUnreachable 502   connect refused, reset, DNS, TLS, proxy failures
    ├── UpstreamTimeout     504   connect or read timeout, stream idle timeout
    ├── UpstreamCredentialsRefused 502  the upstream refused the gateway's own key (a 401/403 for its config)
    ├── UpstreamSessionRefused  4xx/5xx  the upstream answered a WebSocket handshake with that HTTP status
    └── UpstreamTokenUnavailable 502    the gateway's Entra ID credential could not get a token

Upstream *answers* (an Azure 429 or 400) are not errors here: they pass through with their status and body.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import orjson

__all__ = [
    "AuthenticationError",
    "Conflict",
    "ConsoleUnavailable",
    "DatabaseUnavailable",
    "DependencyUnavailable",
    "GatewayError",
    "HeadersTooLarge",
    "InvalidRequest",
    "LimitsUnavailable",
    "MethodNotAllowed",
    "MicrophoneUnavailable",
    "ModelAnswerError",
    "ModelBusy",
    "ModelNotFound",
    "ModelUnavailable",
    "NoDeploymentAvailable",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "QuotaExceeded",
    "RangeNotSatisfiable",
    "RateLimited",
    "RequestTimeout",
    "RouteNotFound",
    "StorageFull",
    "TooManyConnections",
    "UnsupportedMediaType",
    "UpstreamCredentialsRefused",
    "UpstreamError",
    "UpstreamPoolFull",
    "UpstreamSessionRefused",
    "UpstreamTimeout",
    "UpstreamTokenUnavailable",
    "UpstreamUnreachable",
]


class GatewayError(Exception):
    """Base of every error the gateway answers itself; `body()` is OpenAI's error JSON."""

    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> bytes:
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        )


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class AuthenticationError(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "invalid_request_error"
    code = "permission_denied"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, model: str, available: Iterable[str]) -> None:
        names = sorted(available)
        listing = ", ".join(names) if names else "none are configured"
        super().__init__(
            f"The model `{model}` does not exist or is not served by this gateway. Available models: {listing}.",
            param="model",
        )


class RouteNotFound(NotFound):
    code = "unknown_url"

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"Unknown request URL: {method} {path}. Please check the URL and the API base.")


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"

    def __init__(self, method: str, path: str, allowed: Iterable[str]) -> None:
        allow = ", ".join(sorted(allowed))
        super().__init__(f"Method {method} is not allowed for {path}; use {allow}.", headers={"allow": allow})


class RequestTimeout(GatewayError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"The request {what} did not arrive within {seconds:g} seconds; send it without pausing.")


class Conflict(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body exceeds this gateway's limit of {limit} bytes for this endpoint.")


class UnsupportedMediaType(GatewayError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"

    def __init__(self, got: str, expected: str) -> None:
        super().__init__(f"Content-Type {got or '(none)'!r} is not supported here; send {expected}.")


class RangeNotSatisfiable(GatewayError):
    status = 416
    type = "invalid_request_error"
    code = "range_not_satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(
            f"The requested range is not within the {size} bytes of this recording.",
            param="range",
            headers={"content-range": f"bytes */{size}"},
        )


class HeadersTooLarge(GatewayError):
    status = 431
    type = "invalid_request_error"
    code = "request_header_fields_too_large"

    def __init__(self, max_bytes: int, max_fields: int) -> None:
        super().__init__(
            f"Request headers exceed this gateway's limit of {max_bytes} bytes or {max_fields} fields; send fewer."
        )


class NoDeploymentAvailable(GatewayError):
    status = 429
    type = "requests"
    code = "rate_limit_exceeded"

    def __init__(self, model: str, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            f"Every deployment of `{model}` is throttled or failing right now; retry after {seconds} seconds.",
            headers={"retry-after": str(seconds), "retry-after-ms": str(int(retry_after * 1000))},
        )


class RateLimited(GatewayError):
    status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, kind: str, retry_after: float, headers: dict[str, str]) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(message, headers={"retry-after": str(seconds), **headers})
        self.type = kind  # "requests" or "tokens", as OpenAI says which one ran out


class QuotaExceeded(GatewayError):
    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"


class ModelBusy(GatewayError):
    status = 429
    type = "requests"
    code = "rate_limit_exceeded"

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            f"The local model is busy: every worker is at work and the queue is full. Retry after {seconds} seconds.",
            headers={"retry-after": str(seconds), "retry-after-ms": str(int(retry_after * 1000))},
        )


class ModelUnavailable(GatewayError):
    status = 503
    type = "server_error"
    code = "service_unavailable"


class TooManyConnections(GatewayError):
    status = 503
    type = "server_error"
    code = "too_many_connections"

    def __init__(self, limit: int, retry_after: int = 1) -> None:
        super().__init__(
            f"The gateway is serving its limit of {limit} connections; retry after {retry_after} seconds.",
            headers={"retry-after": str(retry_after)},
        )


class UpstreamPoolFull(GatewayError):
    """Every one of `upstream.max_connections` was busy for `upstream.pool_wait_seconds`: nothing was sent."""

    status = 503
    type = "server_error"
    code = "upstream_pool_full"

    def __init__(self, limit: int, waited: float, retry_after: int = 1) -> None:
        super().__init__(
            f"The gateway's {limit} upstream connections were all busy for {waited:g} seconds; "
            f"retry after {retry_after} seconds.",
            headers={"retry-after": str(retry_after)},
        )


class DependencyUnavailable(GatewayError):
    """A backing service the request needs is down: a 503 that names it, never a generic 500.

    raise DatabaseUnavailable("connection refused")   # -> 503 database_unavailable, Retry-After: 2
    """

    status = 503
    type = "server_error"
    component = "a backing service"
    code = "dependency_unavailable"

    def __init__(
        self, detail: str, *, code: str | None = None, retry_after: int = 2, message: str | None = None
    ) -> None:
        self.detail = detail
        self.retry_after = retry_after
        text = message or f"The gateway cannot reach {self.component} right now; retry after {retry_after} seconds."
        super().__init__(text, code=code, headers={"retry-after": str(retry_after)})


class LimitsUnavailable(DependencyUnavailable):
    component = "Redis, which holds the rate-limit counters"
    code = "limits_unavailable"


class DatabaseUnavailable(DependencyUnavailable):
    component = "its database (keys, events, usage)"
    code = "database_unavailable"


class ConsoleUnavailable(DependencyUnavailable):
    component = "the console's page process (console.process)"
    code = "console_unavailable"


class MicrophoneUnavailable(DependencyUnavailable):
    component = "a microphone"
    code = "microphone_unavailable"


class StorageFull(GatewayError):
    """The database could not write: its disk (or file system) is full. Nothing was changed."""

    status = 507
    type = "server_error"
    code = "insufficient_storage"

    def __init__(self, database: str) -> None:
        super().__init__(
            f"The gateway's database ({database}) is out of disk space; nothing was changed. The operator must "
            "free space; reads and requests keep working."
        )
        self.database = database


class ModelAnswerError(GatewayError):
    type = "server_error"
    code = "assistant_model_error"

    def __init__(self, model: str, status: int, message: str, retry_after: str | None = None) -> None:
        super().__init__(
            f"The model {model!r} answered {status}: {message}",
            param="model",
            headers={"retry-after": retry_after} if retry_after else None,
        )
        self.status = status if 400 <= status <= 599 else 502
        self.type = "invalid_request_error" if 400 <= status < 500 else "server_error"


class UpstreamError(GatewayError):
    status = 502
    type = "server_error"
    code = "upstream_error"


class UpstreamUnreachable(UpstreamError):
    status = 502
    code = "upstream_unreachable"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamCredentialsRefused(UpstreamError):
    """The upstream answered 401/403 to the key the gateway holds: the caller's own key is not the problem."""

    status = 502
    code = "upstream_credentials_refused"

    def __init__(self, deployment: str) -> None:
        super().__init__(
            "The upstream refused the gateway's credentials for this model; the gateway's operator must fix its "
            "configuration. Your key is fine."
        )
        self.deployment = deployment


class UpstreamSessionRefused(UpstreamError):
    """The upstream answered a WebSocket handshake (a realtime session) with an HTTP status instead of switching.

    raise UpstreamSessionRefused(429, retry_after="2")     # the caller sees the same status
    """

    code = "upstream_refused_session"

    def __init__(self, status: int, retry_after: str | None = None) -> None:
        super().__init__(
            f"The upstream refused the realtime session with HTTP {status}.",
            headers={"retry-after": retry_after} if retry_after else None,
        )
        self.status = status


class UpstreamTokenUnavailable(UpstreamError):
    """The gateway's Entra ID credential got no token (token endpoint down, identity not set up): its config."""

    status = 502
    code = "upstream_token_unavailable"

    def __init__(self, credential: str) -> None:
        super().__init__(
            f"The gateway could not get a Microsoft Entra ID token from its {credential} credential for this "
            "model; the gateway's operator must fix its configuration. Your key is fine."
        )
        self.credential = credential

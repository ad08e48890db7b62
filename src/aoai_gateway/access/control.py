"""Managed access: who is calling (a gateway key), what they may use, and whether a request fits their caps.

    access = AccessControl(settings, keys, limiter)
    grant = await access.admit(request, call)       # raises 401/403/400/429 as OpenAI would
    ...
    await access.settle(grant, request.exchange)    # to the usage the upstream reported

An event attendee's key works only inside the event's window, and its daily caps count days in the event's time
zone. In `auth: passthrough` nothing is checked here (the client's own key goes upstream). In `auth: keys` every API
call needs a gateway key; request counts are admitted exactly, tokens against a reservation (the prompt
estimated locally plus the request's max_tokens, or `access.default_max_tokens`, times its `n`) that is settled
to the real usage afterwards. A token cap can therefore be overshot by at most what the requests in flight at the
moment it is reached use beyond their reservations; request caps are never overshot. With a `max_tokens` cap the
forwarded body always carries a bound: each token field is checked, and one is inserted when none is named.
"""

from __future__ import annotations

import time
from typing import Any
from zoneinfo import ZoneInfo

from ..api_call import Call
from ..config import AccessSettings
from ..errors import (
    AuthenticationError,
    DatabaseUnavailable,
    InvalidRequest,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
)
from ..exchange import Exchange
from ..http.credentials import client_key
from ..http.request import Request
from ..moments import iso
from ..store.events import EventStore
from ..store.keys import GatewayKey, KeyStore
from ..store.usage import key_totals
from .base import Grant
from .limiter import Limiter, Seeder
from .quota import UTC, admission_checks, day_start, estimate_prompt_tokens, ratelimit_headers

# The fields that bound what an endpoint generates, and the one inserted when a capped request names none.
_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
_INSERTED_FIELD = {
    "chat/completions": "max_completion_tokens",
    "completions": "max_tokens",
    "responses": "max_output_tokens",
}
_GENERATES = frozenset(_INSERTED_FIELD)
_MAX_CHOICES = 128  # OpenAI's own bound on `n`
_KEY_STORE_DOWN = (
    "The gateway cannot check this API key now: its key store (the database) is unavailable. Your key is not at "
    "fault; retry after a few seconds."
)


class AccessControl:
    def __init__(self, settings: AccessSettings, keys: KeyStore, events: EventStore, limiter: Limiter) -> None:
        self.settings = settings
        self.keys = keys
        self.events = events
        self.limiter = limiter

    async def authenticate(self, request: Request) -> GatewayKey:
        """The caller's gateway key from the headers alone; recorded on the exchange."""
        exchange = request.exchange
        if exchange.key is not None:
            return exchange.key
        secret = client_key(request.headers)
        if secret is None:
            raise AuthenticationError(
                "You didn't provide an API key. Send your gateway key as 'Authorization: Bearer sk-gw-...'."
            )
        try:
            key = await self.keys.by_secret(secret)
        except DatabaseUnavailable as exc:
            # Keys seen lately were served from the cache; this one cannot be checked, which is not the caller's
            # fault: a 503 to retry, never a 401 that makes a client drop a good key.
            raise DatabaseUnavailable(exc.detail, code="key_store_unavailable", message=_KEY_STORE_DOWN) from exc
        if key is None:
            raise AuthenticationError(f"Incorrect API key provided: {_masked(secret)}.")
        now = time.time()
        exchange.key_id = key.id  # refused calls of a known key are in the ledger too
        exchange.authenticated = True
        if key.revoked_at is not None:
            raise AuthenticationError(f"The API key {key.id} was revoked.", code="key_revoked")
        if key.expires_at is not None and now >= key.expires_at:
            raise AuthenticationError(f"The API key {key.id} expired at {_iso(key.expires_at)}.", code="key_expired")
        if key.event_id is not None:
            event = await self.events.get(key.event_id)
            problem = "The event of this key no longer exists." if event is None else event.window_error(now)
            if problem is not None:
                raise PermissionDenied(problem, code="event_closed")
            exchange.event_id = key.event_id
            exchange.zone = event.zone if event is not None else UTC
        exchange.key = key
        return key

    def allowed_models(self, key: GatewayKey, models: list[str]) -> list[str]:
        return models if key.models is None else [m for m in models if m in key.models]

    async def admit(self, request: Request, call: Call) -> Grant:
        key = await self.authenticate(request)
        exchange = request.exchange
        model = exchange.model or call.model
        if key.models is not None and model not in key.models:
            raise PermissionDenied(
                f"This key may not use `{model}`; it may use: {', '.join(key.models) or 'no models'}.",
                param="model",
                code="model_not_allowed",
            )
        completion = self._bound_tokens(key, call)
        reservation = estimate_prompt_tokens(call.document or {}) + completion * _choices(call.document or {})
        grant = Grant(key, reservation)
        if call.stream and call.document is not None and call.operation != "responses":
            # (A Responses stream always ends with its usage, in `response.completed`.)
            options = call.document.get("stream_options")
            if not (isinstance(options, dict) and options.get("include_usage") is True):
                # Token caps need the real usage of streams too: ask for it, hide it from the client.
                call.patch("stream_options", {**(options if isinstance(options, dict) else {}), "include_usage": True})
                exchange.strip_usage = True
        now = time.time()
        tz = exchange.zone or UTC
        checks = admission_checks(key.id, key.limits, now, tz, reservation)
        seeded = key.limits.daily_requests is not None or key.limits.daily_tokens is not None
        seed = self._ledger_seeds(key, now, tz) if seeded or key.limits.budget_tokens is not None else None
        refusal = await self.limiter.admit([check for check, _ in checks], seed)
        if refusal is not None:
            window = next(w for c, w in checks if c is refusal.check)
            headers = {
                k.decode(): v.decode() for k, v in ratelimit_headers([(refusal.check, window, refusal.used)], now)
            }
            what = f"{window.kind} per {window.scope}" if window.scope != "budget" else "token budget"
            message = (
                f"Rate limit reached for key {key.id}: {refusal.used} of {refusal.check.limit} {what} used"
                + (f"; this request needs {refusal.check.cost}" if window.kind == "tokens" else "")
                + "."
            )
            if window.resets_at is None:
                raise QuotaExceeded(message + " The budget does not renew; ask for a larger one.")
            raise RateLimited(message, window.kind, window.resets_at - now, headers)
        grant.token_counters = [(c.counter, c.cost, c.ttl) for c, w in checks if w.kind == "tokens"]
        return grant

    def _bound_tokens(self, key: GatewayKey, call: Call) -> int:
        """The completion tokens one choice may use; with a cap, the forwarded body always carries that bound.

        Every token field the request names is checked (a request naming two must not slip past with one); a
        capped request that names none gets one inserted, so nothing upstream generates past the cap.
        """
        document = call.document or {}
        cap = key.limits.max_tokens
        asked: dict[str, int] = {}
        for name in _TOKEN_FIELDS:
            if name in document and document[name] is not None:
                asked[name] = _whole_number(document[name], name)
        if cap is None:
            return max(asked.values(), default=self.settings.default_max_tokens)
        for name, value in asked.items():
            if value <= cap:
                continue
            if self.settings.max_tokens_policy == "reject":
                raise InvalidRequest(
                    f"{name} is {value}, above this key's cap of {cap} tokens per request.",
                    param=name,
                    code="max_tokens_exceeded",
                )
            call.patch(name, cap)
            asked[name] = cap
        if not asked and call.operation in _GENERATES and call.document is not None:
            call.patch(_INSERTED_FIELD[call.operation], cap)
        return min(asked.values(), default=cap)

    def _ledger_seeds(self, key: GatewayKey, now: float, tz: ZoneInfo) -> Seeder:
        """What a key's day and budget counters hold by the usage ledger, for a limiter that finds them missing
        (a new process, a new day, a Redis restarted empty). Rows still buffered (the last flush interval's) are
        not counted; refused requests of the key are."""

        async def seed() -> dict[str, int]:
            day_requests, day_tokens, tokens = await key_totals(self.keys.db, key.id, day_start(now, tz))
            used = {("requests", "day"): day_requests, ("tokens", "day"): day_tokens, ("tokens", "budget"): tokens}
            return {
                check.counter: used.get((window.kind, window.scope), 0)
                for check, window in admission_checks(key.id, key.limits, now, tz, 0)
                if check.seeded
            }

        return seed

    async def settle(self, grant: Grant, exchange: Exchange) -> None:
        """Replace the reservation with the tokens really used (none when the call failed)."""
        if not grant.token_counters:
            return
        used = sum(exchange.usage) if exchange.usage is not None else 0
        await self.limiter.adjust([(counter, used - cost, ttl) for counter, cost, ttl in grant.token_counters])

    async def charge(self, exchange: Exchange) -> bool:
        """Count the tokens of work done inside an admitted session (a realtime response) in the windows open now;
        False when a token cap of the key is used up."""
        key = exchange.key
        if key is None or exchange.usage is None:
            return True
        used = sum(exchange.usage)
        checks = [
            c
            for c, w in admission_checks(key.id, key.limits, time.time(), exchange.zone or UTC, 0)
            if w.kind == "tokens"
        ]
        if not checks:
            return True
        await self.limiter.adjust([(c.counter, used, c.ttl) for c in checks])
        totals = await self.limiter.read([c.counter for c in checks])
        return all(total < c.limit for total, c in zip(totals, checks, strict=True))


def _masked(secret: str) -> str:
    return secret[:8] + "*" * 4 + secret[-4:] if len(secret) > 16 else "****"


def _iso(epoch: float) -> str:
    return iso(epoch).replace("+00:00", "Z")  # never raises: a key stored expiring at -1e308 still answers 401


def _whole_number(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"{name} must be a non-negative integer.", param=name, code="invalid_type")
    return value


def _choices(document: dict[str, Any]) -> int:
    """How many completions one request is billed for: `n`, or `best_of` (completions) when that is larger."""
    count = 1
    for name in ("n", "best_of"):
        value = document.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_CHOICES:
            raise InvalidRequest(f"{name} must be an integer from 1 to {_MAX_CHOICES}.", param=name)
        count = max(count, value) if name == "best_of" else count * value
    return count

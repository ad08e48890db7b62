"""Managed access: who is calling (a gateway key), what they may use, and whether a request fits their caps.

    access = AccessControl(settings, keys, limiter)
    grant = await access.admit(request, call)       # raises 401/403/400/429 as OpenAI would
    ...
    await access.settle(grant, usage=(prompt_tokens, completion_tokens))

An event attendee's key works only inside the event's window, and its daily caps count days in the event's time
zone. In `auth: passthrough` nothing is checked here (the client's own key goes upstream). In `auth: keys` every API
call needs a gateway key; request counts are admitted exactly, tokens against a reservation (the prompt
estimated locally plus the request's max_tokens, or `access.default_max_tokens`) that is settled to the real
usage afterwards. A token cap can therefore be overshot by at most what the requests in flight at the moment it
is reached use beyond their reservations; request caps are never overshot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from ..config import AccessSettings
from ..errors import AuthenticationError, InvalidRequest, PermissionDenied, QuotaExceeded, RateLimited
from ..http.request import Request
from ..moments import iso
from ..proxy.body import Call
from ..proxy.headers import client_key
from ..store.events import EventStore
from ..store.keys import GatewayKey, KeyStore
from ..store.usage import key_totals
from .limiter import Limiter
from .quota import UTC, admission_checks, day_start, estimate_prompt_tokens, ratelimit_headers, requested_max_tokens

Usage = tuple[int, int]


@dataclass(slots=True)
class Grant:
    key: GatewayKey
    reservation: int
    token_counters: list[tuple[str, int, int]] = field(default_factory=list)  # (counter, cost, ttl)
    strip_usage: bool = False


class AccessControl:
    def __init__(
        self, settings: AccessSettings, keys: KeyStore, events: EventStore, limiter: Limiter, *, seed: bool = False
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.events = events
        self.limiter = limiter
        # In-memory counters start empty in every process: seed a key's day and budget from the ledger once.
        self._seed = seed
        self._seeded: set[str] = set()

    async def authenticate(self, request: Request) -> GatewayKey:
        secret = client_key(request.headers)
        if secret is None:
            raise AuthenticationError(
                "You didn't provide an API key. Send your gateway key as 'Authorization: Bearer sk-gw-...'."
            )
        key = await self.keys.by_secret(secret)
        if key is None:
            raise AuthenticationError(f"Incorrect API key provided: {_masked(secret)}.")
        now = time.time()
        request.state["key_id"] = key.id  # refused calls of a known key are in the ledger too
        if key.revoked_at is not None:
            raise AuthenticationError(f"The API key {key.id} was revoked.", code="key_revoked")
        if key.expires_at is not None and now >= key.expires_at:
            raise AuthenticationError(f"The API key {key.id} expired at {_iso(key.expires_at)}.", code="key_expired")
        if key.event_id is not None:
            event = await self.events.get(key.event_id)
            problem = "The event of this key no longer exists." if event is None else event.window_error(now)
            if problem is not None:
                raise PermissionDenied(problem, code="event_closed")
            request.state["event_id"] = key.event_id
            request.state["zone"] = event.zone if event is not None else UTC
        return key

    def allowed_models(self, key: GatewayKey, models: list[str]) -> list[str]:
        return models if key.models is None else [m for m in models if m in key.models]

    async def admit(self, request: Request, call: Call) -> Grant:
        key = await self.authenticate(request)
        if key.models is not None and call.model not in key.models:
            raise PermissionDenied(
                f"This key may not use `{call.model}`; it may use: {', '.join(key.models) or 'no models'}.",
                param="model",
                code="model_not_allowed",
            )
        document = call.document or {}
        cap = key.limits.max_tokens
        asked = requested_max_tokens(document)
        if cap is not None and asked is not None and asked > cap:
            if self.settings.max_tokens_policy == "reject":
                raise InvalidRequest(
                    f"max_tokens is {asked}, above this key's cap of {cap} tokens per request.",
                    param="max_tokens",
                    code="max_tokens_exceeded",
                )
            call.patch("max_completion_tokens" if "max_completion_tokens" in document else "max_tokens", cap)
            asked = cap
        completion = asked if asked is not None else (cap or self.settings.default_max_tokens)
        reservation = estimate_prompt_tokens(document) + completion
        grant = Grant(key, reservation)
        if call.stream and call.document is not None:
            options = document.get("stream_options")
            if not (isinstance(options, dict) and options.get("include_usage") is True):
                # Token caps need the real usage of streams too: ask for it, hide it from the client.
                call.patch("stream_options", {**(options if isinstance(options, dict) else {}), "include_usage": True})
                grant.strip_usage = True
        now = time.time()
        zone = request.state.get("zone")
        tz = zone if isinstance(zone, ZoneInfo) else UTC
        if self._seed and key.id not in self._seeded:
            await self._seed_from_ledger(key, now, tz)
        checks = admission_checks(key.id, key.limits, now, tz, reservation)
        refusal = await self.limiter.admit([check for check, _ in checks])
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

    async def _seed_from_ledger(self, key: GatewayKey, now: float, tz: ZoneInfo) -> None:
        self._seeded.add(key.id)
        limits = key.limits
        if limits.daily_requests is None and limits.daily_tokens is None and limits.budget_tokens is None:
            return
        day_requests, day_tokens, tokens = await key_totals(self.keys.db, key.id, day_start(now, tz))
        changes = []
        for check, window in admission_checks(key.id, limits, now, tz, 0):
            used = {("requests", "day"): day_requests, ("tokens", "day"): day_tokens, ("tokens", "budget"): tokens}.get(
                (window.kind, window.scope), 0
            )
            if used:
                changes.append((check.counter, used, check.ttl))
        await self.limiter.adjust(changes)

    async def settle(self, grant: Grant, usage: Usage | None) -> None:
        """Replace the reservation with the tokens really used (none when the call failed)."""
        if not grant.token_counters:
            return
        used = sum(usage) if usage is not None else 0
        await self.limiter.adjust([(counter, used - cost, ttl) for counter, cost, ttl in grant.token_counters])


def _masked(secret: str) -> str:
    return secret[:8] + "*" * 4 + secret[-4:] if len(secret) > 16 else "****"


def _iso(epoch: float) -> str:
    return iso(epoch).replace("+00:00", "Z")  # never raises: a key stored expiring at -1e308 still answers 401

"""From a principal's caps to limiter checks, reservations and truthful rate-limit headers.

    checks = admission_checks("key_ab12", limits, now=time.time(), tz=UTC, reservation=1200)

Windows are fixed and named after their start: per minute (UTC minutes), per day (midnight to midnight in the
principal's time zone: UTC for keys, the event's zone for attendees), and the lifetime budget. Day and budget
counters are `seeded`: the limiter creates them from the usage ledger, never from zero.
Token checks cost `min(reservation, cap)`, so a request whose reservation alone exceeds a cap can still run
when nothing else was used in the window; it is settled to its real usage afterwards.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ..store.keys import Limits
from .limiter import Check

UTC = ZoneInfo("UTC")
_MINUTE_TTL = 120
_DAY_TTL = 2 * 86400 + 3600
_BUDGET_TTL = 10 * 365 * 86400


@dataclass(frozen=True, slots=True)
class Window:
    kind: str  # "requests" | "tokens"
    scope: str  # "minute" | "day" | "budget"
    resets_at: float | None  # epoch seconds; None for the budget


_DAYS: dict[str, tuple[float, float, str]] = {}  # zone -> (day start, next midnight, day name): pure cache


def _day(now: float, tz: ZoneInfo) -> tuple[str, float]:
    cached = _DAYS.get(tz.key)
    if cached is not None and cached[0] <= now < cached[1]:
        return cached[2], cached[1]
    local = dt.datetime.fromtimestamp(now, tz)
    start = dt.datetime.combine(local.date(), dt.time(), tz).timestamp()
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tz).timestamp()
    _DAYS[tz.key] = (start, midnight, local.strftime("%Y%m%d"))
    return local.strftime("%Y%m%d"), midnight


def day_start(now: float, tz: ZoneInfo) -> float:
    _day(now, tz)
    return _DAYS[tz.key][0]


def admission_checks(
    subject: str, limits: Limits, now: float, tz: ZoneInfo, reservation: int
) -> list[tuple[Check, Window]]:
    minute = int(now // 60)
    minute_reset = (minute + 1) * 60.0
    day, day_reset = _day(now, tz)
    checks: list[tuple[Check, Window]] = []
    if limits.rpm is not None:
        checks.append(
            (Check(f"{subject}:rpm:{minute}", limits.rpm, 1, _MINUTE_TTL), Window("requests", "minute", minute_reset))
        )
    if limits.daily_requests is not None:
        checks.append(
            (
                Check(f"{subject}:rpd:{day}", limits.daily_requests, 1, _DAY_TTL, seeded=True),
                Window("requests", "day", day_reset),
            )
        )
    if limits.tpm is not None:
        checks.append(
            (
                Check(f"{subject}:tpm:{minute}", limits.tpm, min(reservation, limits.tpm), _MINUTE_TTL),
                Window("tokens", "minute", minute_reset),
            )
        )
    if limits.daily_tokens is not None:
        cost = min(reservation, limits.daily_tokens)
        checks.append(
            (
                Check(f"{subject}:tpd:{day}", limits.daily_tokens, cost, _DAY_TTL, seeded=True),
                Window("tokens", "day", day_reset),
            )
        )
    if limits.budget_tokens is not None:
        cost = min(reservation, limits.budget_tokens)
        checks.append(
            (
                Check(f"{subject}:budget", limits.budget_tokens, cost, _BUDGET_TTL, seeded=True),
                Window("tokens", "budget", None),
            )
        )
    return checks


def duration(seconds: float) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `2h3m4s`."""
    total = max(0, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def ratelimit_headers(entries: list[tuple[Check, Window, int]], now: float) -> list[tuple[bytes, bytes]]:
    """x-ratelimit-* for the tightest requests window and the tightest tokens window: (check, window, used)."""
    headers: list[tuple[bytes, bytes]] = []
    for kind in ("requests", "tokens"):
        relevant = [(c, w, used) for c, w, used in entries if w.kind == kind]
        if not relevant:
            continue
        check, window, used = min(relevant, key=lambda e: e[0].limit - e[2])
        remaining = max(0, check.limit - used)
        headers.append((f"x-ratelimit-limit-{kind}".encode(), str(check.limit).encode()))
        headers.append((f"x-ratelimit-remaining-{kind}".encode(), str(remaining).encode()))
        if window.resets_at is not None:
            headers.append((f"x-ratelimit-reset-{kind}".encode(), duration(window.resets_at - now).encode()))
    return headers


def estimate_prompt_tokens(document: dict[str, object]) -> int:
    """A local estimate of prompt tokens: about 4 characters a token, plus a few per message.

    Exact tokenizers need encoding files downloaded at run time, which our servers cannot do; the estimate only
    sizes the reservation, and every request is settled to the upstream's real `usage`.
    """
    characters = 0
    messages = document.get("messages")
    if isinstance(messages, list):
        for message in messages:
            characters += len(str(message.get("content", ""))) if isinstance(message, dict) else 0
        characters += 16 * len(messages)
    for field in ("prompt", "input"):
        value = document.get(field)
        if value is not None:
            characters += len(str(value))
    return math.ceil(characters / 4)

"""Instants as epoch seconds: the range the gateway accepts, and rendering that never raises.

    check_moment(epoch)                     # ValueError unless 2000-01-01 <= epoch < 2200-01-01 (UTC)
    iso(epoch, ZoneInfo("Asia/Tokyo"))      # "2026-12-01T18:00:00+09:00"; out of range: UTC, else the raw epoch
    zone_or_utc("Mars/Olympus")             # UTC: a row stored with a zone this host lacks still renders
    parse_duration("90m")                   # -> 5400.0 seconds: N followed by s, m, h, d or w
    parse_since("7d")                       # -> now minus 7 days; also "2026-11-01", "2026-11-01T09:00+01:00"

Inputs are bounded so anything stored from now on renders in every zone. Rows stored before the bounds existed
(an event in year 9999 at Etc/GMT+12, a key expiring at -1e308) must still list and authenticate, so rendering
falls back instead of raising.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from zoneinfo import ZoneInfo

UTC = ZoneInfo("UTC")
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp()
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC).timestamp()  # exclusive


def check_moment(epoch: float) -> float:
    """The epoch itself when it lies in [2000, 2200) UTC; a ValueError (the caller names the field) otherwise."""
    if not math.isfinite(epoch) or not EARLIEST <= epoch < LATEST:
        raise ValueError("must lie between 2000-01-01 and 2200-01-01 (UTC)")
    return epoch


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^([0-9]{1,9})([smhdw])$")


def parse_duration(text: str) -> float:
    """`2h` -> 7200.0: a whole number (up to 9 digits) and a unit (s, m, h, d, w); ValueError otherwise."""
    found = _DURATION.match(text.strip().lower())
    if found is None:
        raise ValueError(f"{text[:64]!r} is not a duration such as 30m, 2h, 7d or 1w")
    return float(int(found[1]) * _UNITS[found[2]])


def parse_since(text: str, now: float | None = None) -> float:
    """The instant `--since` names, as epoch seconds: a duration back from `now` (`2h`, `7d`), or an ISO 8601 date
    or date-time (`2026-11-01`, `2026-11-01T09:00`, `...Z`, `...+01:00`; read in UTC without an offset).

    The one parser of every `--since`; a ValueError that says what is accepted when `text` is neither. A filter
    from far in the future or past is harmless (it matches nothing, or everything), so the range is not bounded.
    """
    text = text.strip()
    if _DURATION.match(text.lower()):
        epoch = (time.time() if now is None else now) - parse_duration(text)
    else:
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            epoch = (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
        except (ValueError, OverflowError, OSError):
            raise ValueError(
                f"{text[:64]!r} is neither a duration (30m, 2h, 7d, 1w) nor an ISO 8601 date or time "
                "(2026-11-01, 2026-11-01T09:00, 2026-11-01T09:00+01:00)"
            ) from None
    return epoch


def zone_or_utc(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return UTC


def _local(epoch: float, zone: ZoneInfo) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(epoch, zone)
    except (OverflowError, ValueError, OSError):
        return None


def iso(epoch: float, zone: ZoneInfo = UTC) -> str:
    """ISO 8601 in `zone`; in UTC when the zone cannot show it; the raw epoch when no calendar can."""
    moment = _local(epoch, zone) or _local(epoch, UTC)
    return moment.isoformat() if moment is not None else repr(float(epoch))


def wall(epoch: float, zone: ZoneInfo, label: str) -> str:
    """`2026-12-01 18:00 (Asia/Tokyo)` for messages, with the same fallbacks as `iso`."""
    moment = _local(epoch, zone)
    if moment is not None:
        return moment.strftime(f"%Y-%m-%d %H:%M ({label})")
    return iso(epoch, UTC)


__all__ = [
    "EARLIEST",
    "LATEST",
    "UTC",
    "check_moment",
    "iso",
    "parse_duration",
    "parse_since",
    "wall",
    "zone_or_utc",
]

"""Instants as epoch seconds: the range the gateway accepts, and rendering that never raises.

    check_moment(epoch)                     # ValueError unless 2000-01-01 <= epoch < 2200-01-01 (UTC)
    iso(epoch, ZoneInfo("Asia/Tokyo"))      # "2026-12-01T18:00:00+09:00"; out of range: UTC, else the raw epoch
    zone_or_utc("Mars/Olympus")             # UTC: a row stored with a zone this host lacks still renders

Inputs are bounded so anything stored from now on renders in every zone. Rows stored before the bounds existed
(an event in year 9999 at Etc/GMT+12, a key expiring at -1e308) must still list and authenticate, so rendering
falls back instead of raising.
"""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

UTC = ZoneInfo("UTC")
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp()
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC).timestamp()  # exclusive


def check_moment(epoch: float) -> float:
    """The epoch itself when it lies in [2000, 2200) UTC; a ValueError (the caller names the field) otherwise."""
    if not math.isfinite(epoch) or not EARLIEST <= epoch < LATEST:
        raise ValueError("must lie between 2000-01-01 and 2200-01-01 (UTC)")
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


__all__ = ["EARLIEST", "LATEST", "UTC", "check_moment", "iso", "wall", "zone_or_utc"]

"""The console's small parts on their own: session expiry and bounds, the throttle's windows, cookies, CSRF."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from aoai_gateway.console.security import CsrfGuard, cookie_header, read_cookies
from aoai_gateway.console.sessions import AdminSessions, SignInThrottle, StoredSessions
from aoai_gateway.errors import PermissionDenied, RateLimited
from aoai_gateway.store import connect_database, migrate


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_sessions_expire_and_stay_bounded() -> None:
    clock = Clock()
    sessions = AdminSessions(ttl_seconds=60, max_sessions=3, clock=clock)
    first = await sessions.open()
    assert await sessions.valid(first) and not await sessions.valid("forged") and not await sessions.valid(None)
    clock.now += 61
    assert not await sessions.valid(first)
    opened = [await sessions.open() for _ in range(4)]
    assert not await sessions.valid(opened[0])  # the oldest went first
    assert all([await sessions.valid(s) for s in opened[1:]])
    await sessions.close(opened[1])
    assert not await sessions.valid(opened[1])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_stored_sessions_keep_only_hashes_expire_and_close(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path}/gateway.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    db = await connect_database(url)
    await migrate(db)
    await db.execute("DELETE FROM console_sessions")  # the PostgreSQL database is shared by the test session
    clock = Clock(time.time())
    sessions = StoredSessions(db, ttl_seconds=60, clock=clock)
    first = await sessions.open()
    rows = await db.fetch("SELECT id_hash, expires_at FROM console_sessions")
    assert [row["id_hash"] for row in rows] == [hashlib.sha256(first.encode()).hexdigest()]  # never the id
    assert rows[0]["expires_at"] == pytest.approx(clock.now + 60)
    # Another process's view of the same database (a second worker, the next start) knows it.
    other = StoredSessions(await connect_database(url), ttl_seconds=60, clock=clock)
    assert await other.valid(first)
    for forged in ("forged", "", "x" * 10_000, "\x00'; DROP TABLE console_sessions; --", "é"):
        assert not await other.valid(forged)
    clock.now += 61
    assert not await other.valid(first)
    second = await sessions.open()  # opening drops the expired rows
    assert len(await db.fetch("SELECT id_hash FROM console_sessions")) == 1
    assert await other.valid(second)
    await other.close(second)
    assert not await sessions.valid(second)
    await other.db.close()
    await db.close()


def test_throttle_counts_per_address_and_window() -> None:
    clock = Clock(900.0 * 1000)
    throttle = SignInThrottle(attempts=2, window=900, clock=clock)
    throttle.admit("203.0.113.7")
    throttle.refund("203.0.113.7")  # a right key is not counted
    throttle.admit("203.0.113.7")
    throttle.admit("203.0.113.7")
    with pytest.raises(RateLimited) as refused:
        throttle.admit("203.0.113.7")
    assert refused.value.headers["retry-after"] == "900"
    throttle.admit("198.51.100.1")  # another address has its own count
    throttle.admit("2001:db8::1")
    throttle.admit("2001:db8::2")
    with pytest.raises(RateLimited):
        throttle.admit("2001:db8::3")  # one IPv6 /64 is one client
    clock.now += 900
    throttle.admit("203.0.113.7")  # a new quarter-hour


def test_cookies_and_csrf() -> None:
    assert cookie_header("a", "b", path="/console", secure=True, max_age=0) == (
        b"set-cookie",
        b"a=b; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0; Secure",
    )
    assert b"Secure" not in cookie_header("a", "b", path="/c", secure=False)[1]
    assert read_cookies("a=1; b = 2;junk; a=3; =x") == {"a": "1", "b": "2"}
    guard = CsrfGuard.for_master_key("master")
    token = guard.token("cookie-value")
    guard.check("cookie-value", token)
    assert CsrfGuard.for_master_key("master").token("cookie-value") == token  # every worker agrees
    assert CsrfGuard.for_master_key("other").token("cookie-value") != token
    for cookie, given in (("cookie-value", "x"), ("other", token), (None, token), ("cookie-value", None), ("c", "é")):
        with pytest.raises(PermissionDenied):
            guard.check(cookie, given)

"""Event self-registration under attack: farming, duplicates, races, code guessing, early birds, weak codes.

Every loop is bounded in count and runs against a gateway on loopback; nothing waits on the clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from typing import Any

import httpx

from aoai_gateway.access.codes import code_matches, hash_code, is_legacy
from aoai_gateway.access.registration import address_bucket

from .keyed import chat
from .test_events import AUTH, create_event, local


def open_event(gateway: Any, **fields: Any) -> dict[str, Any]:
    """An event running now, in UTC."""
    window = {"starts_at": local("UTC", -dt.timedelta(hours=1)), "ends_at": local("UTC", dt.timedelta(hours=3))}
    return create_event(gateway, **{"timezone": "UTC", **window, **fields})


def register(gateway: Any, event: dict[str, Any], **body: Any) -> httpx.Response:
    return httpx.post(f"{gateway.url}/events/{event['id']}/register", json=body, timeout=30)


async def register_all(gateway: Any, event: dict[str, Any], bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """All at once: one connection each, so the server sees them concurrently."""
    url = f"{gateway.url}/events/{event['id']}/register"
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return list(await asyncio.gather(*(client.post(url, json=body) for body in bodies)))


def attendees(gateway: Any, event: dict[str, Any]) -> list[dict[str, Any]]:
    url = f"{gateway.url}/admin/events/{event['id']}/attendees"
    return httpx.get(url, headers=AUTH).json()["data"]  # type: ignore[no-any-return]


async def test_one_key_per_email_and_per_name(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    event = open_event(gateway)
    first = register(gateway, event, email="Ann@Example.com")
    assert first.status_code == 201, first.text
    again = register(gateway, event, email=" ann@EXAMPLE.com ")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_registered"
    assert again.json()["error"]["param"] == "email" and "key" not in again.json()
    assert chat(gateway, first.json()["key"]).status_code == 200
    assert register(gateway, event, name="Bo  Li").status_code == 201
    assert register(gateway, event, name="bo li").status_code == 409
    full_width = "\uff22\uff2f LI"  # "BO" in full-width letters: NFKC folds them
    assert register(gateway, event, name=full_width).status_code == 409
    assert sorted(a["name"] for a in attendees(gateway, event)) == ["Bo  Li", "ann@example.com"]
    # Another event is another attendee list.
    assert register(gateway, open_event(gateway), email="ann@example.com").status_code == 201
    # No identity at all is refused: it could not be held to one key.
    assert register(gateway, event).status_code == 400


async def test_concurrent_duplicates_give_exactly_one_key(keyed: Any) -> None:
    start, _, db, _ = keyed
    gateway = start()
    event = open_event(gateway)
    answers = await register_all(gateway, event, [{"email": "race@example.com"}] * 16)
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 15, codes
    winner = next(a for a in answers if a.status_code == 201).json()["key"]
    assert chat(gateway, winner).status_code == 200
    rows = await db.fetch("SELECT id FROM keys WHERE event_id = ?", [event["id"]])
    assert len(rows) == 1
    listed = httpx.get(f"{gateway.url}/admin/events", headers=AUTH).json()["data"]
    assert next(e for e in listed if e["id"] == event["id"])["attendees"] == 1  # losers gave their seats back


async def test_farming_hits_the_address_limit(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start(access={"registrations_per_address": 8})
    event = open_event(gateway)
    began = time.monotonic()
    answers = [register(gateway, event, email=f"bot{i}@example.com") for i in range(20)]
    assert time.monotonic() - began < 60
    assert [a.status_code for a in answers] == [201] * 8 + [429] * 12
    refused = answers[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 3600 and "registrations" in refused.json()["error"]["message"]
    assert len(attendees(gateway, event)) == 8
    # The counter is per address, not per event: another event does not reset it.
    assert register(gateway, open_event(gateway), email="bot@example.com").status_code == 429


async def test_forged_forwarding_headers_do_not_reset_the_address_limit(keyed: Any) -> None:
    """The gateway trusts no X-Forwarded-For or Forwarded header (SECURITY.md), not even from 127.0.0.1: a farm
    that rotates them is still one address."""
    start, _, _, _ = keyed
    gateway = start(access={"registrations_per_address": 3})
    event = open_event(gateway)
    answers = [
        httpx.post(
            f"{gateway.url}/events/{event['id']}/register",
            json={"email": f"forged{i}@example.com"},
            headers={"x-forwarded-for": f"203.0.113.{i}", "forwarded": f"for=198.51.100.{i}"},
            timeout=30,
        )
        for i in range(6)
    ]
    assert [a.status_code for a in answers] == [201] * 3 + [429] * 3


async def test_max_attendees_holds_under_a_concurrent_farm(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start(access={"registrations_per_address": 1000})
    event = open_event(gateway, max_attendees=5)
    assert event["max_attendees"] == 5
    answers = await register_all(gateway, event, [{"email": f"bot{i}@example.com"} for i in range(24)])
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 5 + [403] * 19, codes
    full = next(a for a in answers if a.status_code == 403).json()["error"]
    assert full["code"] == "event_full"
    assert len(attendees(gateway, event)) == 5
    assert register(gateway, event, email="late@example.com").json()["error"]["code"] == "event_full"


async def test_code_guessing_is_locked_out(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start(access={"code_failures_per_address": 5})
    event = open_event(gateway, shared_code="correct-horse-battery")
    guesses = [register(gateway, event, name=f"guess {i}", code=f"guess-{i:04d}") for i in range(12)]
    assert [g.status_code for g in guesses] == [403] * 5 + [429] * 7
    assert guesses[0].json()["error"]["code"] == "bad_code"
    assert 1 <= int(guesses[-1].headers["retry-after"]) <= 900
    # Locked out means locked out: the right code now gets the same 429, so the lock-out is no oracle.
    assert register(gateway, event, name="Ann", code="correct-horse-battery").status_code == 429


async def test_concurrent_guesses_count_before_they_are_checked(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start(access={"code_failures_per_address": 4})
    event = open_event(gateway, shared_code="correct-horse-battery")
    answers = await register_all(gateway, event, [{"name": f"g{i}", "code": f"wrong-{i:04d}"} for i in range(16)])
    assert sorted(a.status_code for a in answers) == [403] * 4 + [429] * 12


async def test_right_codes_do_not_use_up_the_lockout(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start(access={"code_failures_per_address": 2})
    event = open_event(gateway, shared_code="correct-horse-battery")
    # A venue behind one NAT: many right codes from one address, a typo now and then.
    answers = [register(gateway, event, name=f"attendee {i}", code="correct-horse-battery") for i in range(6)]
    assert [a.status_code for a in answers] == [201] * 6
    assert register(gateway, event, name="typo", code="correct-horse-batery").status_code == 403
    assert register(gateway, event, name="typo", code="correct-horse-battery").status_code == 201


async def test_registration_opens_before_the_event(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    later = {"starts_at": local("Europe/Berlin", dt.timedelta(days=10)), "timezone": "Europe/Berlin"}
    event = create_event(gateway, ends_at=local("Europe/Berlin", dt.timedelta(days=11)), **later)
    early = register(gateway, event, name="Early Bird")
    assert early.status_code == 403 and early.json()["error"]["code"] == "registration_not_open"
    assert "(Europe/Berlin)" in early.json()["error"]["message"]
    # Inside the last week it is open; the key itself still waits for the event.
    soon = create_event(
        gateway,
        starts_at=local("UTC", dt.timedelta(days=6)),
        ends_at=local("UTC", dt.timedelta(days=7)),
        timezone="UTC",
    )
    registered = register(gateway, soon, name="On Time")
    assert registered.status_code == 201
    assert chat(gateway, registered.json()["key"]).json()["error"]["code"] == "event_closed"


async def test_registration_opening_is_a_setting(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start(access={"registration_opens_days": 30})
    event = create_event(
        gateway,
        starts_at=local("UTC", dt.timedelta(days=10)),
        ends_at=local("UTC", dt.timedelta(days=11)),
        timezone="UTC",
    )
    assert register(gateway, event, name="Early Bird").status_code == 201


async def test_weak_codes_are_refused_and_generated_ones_shown_once(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    window = {"starts_at": local("UTC", -dt.timedelta(hours=1)), "ends_at": local("UTC", dt.timedelta(hours=1))}
    for weak in ("1234", "abcdefg", ""):
        body = {"name": "x", "timezone": "UTC", "shared_code": weak, **window}
        answer = httpx.post(f"{gateway.url}/admin/events", json=body, headers=AUTH)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == "shared_code", weak
    event = open_event(gateway, shared_code="generate")
    code = event["shared_code"]
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}", code) and event["needs_code"]
    listed = httpx.get(f"{gateway.url}/admin/events", headers=AUTH).json()["data"]
    assert all("shared_code" not in e for e in listed) and code not in str(listed)
    assert register(gateway, event, name="Ann", code=code).status_code == 201


async def test_codes_are_stored_with_scrypt_and_old_hashes_upgrade(keyed: Any) -> None:
    start, _, db, _ = keyed
    gateway = start()
    event = open_event(gateway, shared_code="correct-horse-battery")
    (row,) = await db.fetch("SELECT shared_code_hash FROM events WHERE id = ?", [event["id"]])
    stored = row["shared_code_hash"]
    assert stored.startswith("scrypt$") and "correct-horse-battery" not in stored
    assert await code_matches(stored, "correct-horse-battery") and not await code_matches(stored, "wrong")
    other = open_event(gateway, shared_code="correct-horse-battery")
    (again,) = await db.fetch("SELECT shared_code_hash FROM events WHERE id = ?", [other["id"]])
    assert again["shared_code_hash"] != stored  # a salt per event
    # An event from before scrypt: its SHA-256 hash still admits the right code, then becomes scrypt.
    import hashlib

    legacy = hashlib.sha256(b"old-code").hexdigest()
    await db.execute("UPDATE events SET shared_code_hash = ? WHERE id = ?", [legacy, event["id"]])
    assert register(gateway, event, name="Old", code="wrong-code").status_code == 403
    assert register(gateway, event, name="Old", code="old-code").status_code == 201
    (upgraded,) = await db.fetch("SELECT shared_code_hash FROM events WHERE id = ?", [event["id"]])
    assert not is_legacy(upgraded["shared_code_hash"]) and await code_matches(upgraded["shared_code_hash"], "old-code")
    assert await code_matches(await hash_code("x" * 8), "x" * 8)
    assert not await code_matches("scrypt$mangled", "x")


def test_addresses_count_per_client() -> None:
    assert address_bucket("203.0.113.7") == "203.0.113.7"
    assert address_bucket("2001:db8:1:2:3:4:5:6") == address_bucket("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert address_bucket("::ffff:203.0.113.7") == "203.0.113.7"
    assert address_bucket(None) == "unknown"

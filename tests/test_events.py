"""Events: attendees self-register for keys that work only inside the event window, in the event's time zone."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from .keyed import MASTER, chat

AUTH = {"authorization": f"Bearer {MASTER}"}


def create_event(gateway: Any, **fields: Any) -> dict[str, Any]:
    body = {"name": "Hack Day", "timezone": "Asia/Tokyo", "models": ["gpt-4o"], "daily_requests": 3, **fields}
    response = httpx.post(f"{gateway.url}/admin/events", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def local(zone: str, delta: dt.timedelta) -> str:
    """A wall-clock time in `zone`, without an offset: the event's zone gives it meaning."""
    return (dt.datetime.now(ZoneInfo(zone)) + delta).replace(tzinfo=None).isoformat(timespec="seconds")


async def test_register_and_use_inside_the_window(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    event = create_event(
        gateway,
        starts_at=local("Asia/Tokyo", -dt.timedelta(hours=1)),
        ends_at=local("Asia/Tokyo", dt.timedelta(hours=2)),
        shared_code="open-sesame",
    )
    assert event["timezone"] == "Asia/Tokyo" and event["starts_at"].endswith("+09:00") and event["needs_code"]
    url = f"{gateway.url}/events/{event['id']}/register"
    assert httpx.post(url, json={"name": "Ann"}).status_code == 403  # the code is required
    assert httpx.post(url, json={"name": "Ann", "code": "wrong"}).json()["error"]["code"] == "bad_code"
    assert httpx.post(url, json={"email": "not-an-email", "code": "open-sesame"}).status_code == 400
    registered = httpx.post(url, json={"email": "ann@example.com", "code": "open-sesame"})
    assert registered.status_code == 201
    secret = registered.json()["key"]
    # Per-attendee caps come from the event: 3 requests a day, only its models.
    assert [chat(gateway, secret).status_code for _ in range(4)] == [200, 200, 200, 429]
    other = httpx.post(
        f"{gateway.url}/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": "x"},
        headers={"authorization": f"Bearer {secret}"},
    )
    assert other.status_code == 403
    attendees = httpx.get(f"{gateway.url}/admin/events/{event['id']}/attendees", headers=AUTH).json()["data"]
    assert [a["name"] for a in attendees] == ["ann@example.com"]
    await asyncio.sleep(0.2)
    usage = httpx.get(f"{gateway.url}/admin/usage?event={event['id']}&by=key", headers=AUTH).json()["data"]
    assert usage[0]["key"] == attendees[0]["id"] and usage[0]["requests"] == 5 and usage[0]["errors"] == 2
    revoked = httpx.delete(f"{gateway.url}/admin/events/{event['id']}/attendees/{attendees[0]['id']}", headers=AUTH)
    assert revoked.status_code == 200 and chat(gateway, secret).status_code == 401


async def test_outside_the_window_says_when(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    # Starts in two hours, Los Angeles time: the message names the local opening time and zone.
    future = create_event(
        gateway,
        timezone="America/Los_Angeles",
        starts_at=local("America/Los_Angeles", dt.timedelta(hours=2)),
        ends_at=local("America/Los_Angeles", dt.timedelta(hours=5)),
    )
    secret = httpx.post(f"{gateway.url}/events/{future['id']}/register", json={"name": "Bo"}).json()["key"]
    early = chat(gateway, secret)
    assert early.status_code == 403 and early.json()["error"]["code"] == "event_closed"
    opening = future["starts_at"][:16].replace("T", " ")
    assert opening in early.json()["error"]["message"] and "America/Los_Angeles" in early.json()["error"]["message"]
    past = create_event(
        gateway, starts_at="2020-01-01T09:00:00+01:00", ends_at="2020-01-01T17:00:00+01:00", timezone="Europe/Berlin"
    )
    late = httpx.post(f"{gateway.url}/events/{past['id']}/register", json={"name": "Cy"})
    assert late.status_code == 403 and "ended at 2020-01-01 17:00 (Europe/Berlin)" in late.json()["error"]["message"]


async def test_event_validation(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    bad_zone = httpx.post(
        f"{gateway.url}/admin/events",
        headers=AUTH,
        json={"name": "x", "starts_at": "2030-01-01T09:00", "ends_at": "2030-01-01T10:00", "timezone": "Mars/Olympus"},
    )
    assert bad_zone.status_code == 400 and "time zone" in bad_zone.json()["error"]["message"]
    backwards = httpx.post(
        f"{gateway.url}/admin/events",
        headers=AUTH,
        json={"name": "x", "starts_at": "2030-01-01T09:00", "ends_at": "2030-01-01T08:00", "timezone": "UTC"},
    )
    assert backwards.status_code == 400
    assert httpx.post(f"{gateway.url}/events/evt_missing/register", json={"name": "a"}).status_code == 404
    assert httpx.get(f"{gateway.url}/admin/events").status_code == 401

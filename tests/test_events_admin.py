"""Organisers steer events over the admin API: show, page, change, extend, close, delete; attendees with their
usage, search and revocation; a live summary; and the public description of an event's registration.

Each happy path has its attacker's side next to it: no key and the wrong key on every endpoint, hostile names,
out-of-range dates, ids that do not exist, SQL-ish searches, oversize pages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from aoai_gateway.access.organiser import EventOrganiser
from aoai_gateway.access.specs import EventRequest, EventUpdate
from aoai_gateway.errors import InvalidRequest, NotFound
from aoai_gateway.store import KeySpec, KeyStore, UsageRow, connect_database, migrate
from aoai_gateway.store.events import EventStore
from aoai_gateway.store.usage import UsageLedger

from .conftest import EMULATOR_KEY
from .keyed import chat
from .test_events import AUTH, create_event, local
from .test_input_hygiene import HOSTILE


def open_event(gateway: Any, **fields: Any) -> dict[str, Any]:
    """An event open now (in its own zone, UTC unless given)."""
    zone = fields.setdefault("timezone", "UTC")
    window = {"starts_at": local(zone, -dt.timedelta(hours=1)), "ends_at": local(zone, dt.timedelta(hours=2))}
    return create_event(gateway, **{**window, **fields})


def register(gateway: Any, event_id: str, **form: Any) -> dict[str, Any]:
    response = httpx.post(f"{gateway.url}/events/{event_id}/register", json=form)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    """The OpenAI-shaped error of `response`, after checking its status (and the field it names)."""
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    if param is not None:
        assert body["param"] == param, body
    return body  # type: ignore[no-any-return]


async def test_show_page_change_and_delete(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    admin = f"{gateway.url}/admin/events"
    events = [open_event(gateway, name=f"Day {n}") for n in range(3)]
    first = httpx.get(f"{admin}?limit=2", headers=AUTH).json()
    assert len(first["data"]) == 2 and first["has_more"] is True
    rest = httpx.get(f"{admin}?limit=2&offset=2", headers=AUTH).json()
    assert len(rest["data"]) == 1 and rest["has_more"] is False
    seen = {e["id"] for e in first["data"] + rest["data"]}
    assert seen == {e["id"] for e in events}

    event = events[0]
    shown = httpx.get(f"{admin}/{event['id']}", headers=AUTH).json()
    assert shown == {**event, "attendees": 0}
    ann = register(gateway, event["id"], email="ann@example.com")
    assert chat(gateway, ann["key"]).status_code == 200

    # Caps and models reach the attendee already registered.
    changed = httpx.patch(
        f"{admin}/{event['id']}", json={"name": "Renamed", "daily_requests": 1, "models": ["gpt-4o"]}, headers=AUTH
    )
    assert changed.status_code == 200 and changed.json()["name"] == "Renamed" and changed.json()["daily_requests"] == 1
    assert chat(gateway, ann["key"]).status_code == 429
    key = httpx.get(f"{gateway.url}/admin/keys/{ann['key_id']}", headers=AUTH).json()
    assert key["daily_requests"] == 1 and key["models"] == ["gpt-4o"]
    lifted = httpx.patch(f"{admin}/{event['id']}", json={"daily_requests": None}, headers=AUTH).json()
    assert lifted["daily_requests"] is None and chat(gateway, ann["key"]).status_code == 200

    # Extend: the end moves two hours later, and the attendee's key expires with it.
    extended = httpx.patch(f"{admin}/{event['id']}", json={"extend": "2h"}, headers=AUTH).json()
    moved = dt.datetime.fromisoformat(extended["ends_at"]) - dt.datetime.fromisoformat(event["ends_at"])
    assert moved == dt.timedelta(hours=2)
    key = httpx.get(f"{gateway.url}/admin/keys/{ann['key_id']}", headers=AUTH).json()
    assert key["expires_at"] == dt.datetime.fromisoformat(extended["ends_at"]).timestamp()

    # Close: the event ends now; its attendee's next call is refused, and so is a new registration.
    closed = httpx.patch(f"{admin}/{event['id']}", json={"close": True}, headers=AUTH)
    assert closed.status_code == 200
    assert dt.datetime.fromisoformat(closed.json()["ends_at"]) <= dt.datetime.now(dt.UTC)
    assert chat(gateway, ann["key"]).status_code in (401, 403)
    late = httpx.post(f"{gateway.url}/events/{event['id']}/register", json={"name": "Late"})
    assert error(late, 403)["code"] == "event_closed"

    # Delete: gone from every listing, its keys revoked, its registration a 404.
    other = events[1]
    bo = register(gateway, other["id"], name="Bo")
    assert httpx.delete(f"{admin}/{other['id']}", headers=AUTH).json() == {"id": other["id"], "deleted": True}
    assert error(httpx.get(f"{admin}/{other['id']}", headers=AUTH), 404)["code"] == "not_found"
    assert error(httpx.delete(f"{admin}/{other['id']}", headers=AUTH), 404)
    assert other["id"] not in {e["id"] for e in httpx.get(admin, headers=AUTH).json()["data"]}
    assert chat(gateway, bo["key"]).status_code == 401
    assert httpx.get(f"{gateway.url}/admin/keys/{bo['key_id']}", headers=AUTH).json()["revoked_at"] is not None
    error(httpx.get(f"{gateway.url}/events/{other['id']}/register"), 404)
    error(httpx.post(f"{gateway.url}/events/{other['id']}/register", json={"name": "Cy"}), 404)


async def test_a_closed_event_that_had_not_started_stays_valid(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    future = open_event(
        gateway, starts_at=local("UTC", dt.timedelta(days=1)), ends_at=local("UTC", dt.timedelta(days=2))
    )
    closed = httpx.patch(f"{gateway.url}/admin/events/{future['id']}", json={"close": True}, headers=AUTH).json()
    assert closed["starts_at"] < closed["ends_at"]
    assert dt.datetime.fromisoformat(closed["ends_at"]) <= dt.datetime.now(dt.UTC)


async def test_shared_code_rotation(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    event = open_event(gateway, shared_code="first-code-1")
    url = f"{gateway.url}/admin/events/{event['id']}"
    rotated = httpx.patch(url, json={"shared_code": "generate"}, headers=AUTH).json()
    code = rotated["shared_code"]
    assert rotated["needs_code"] and len(code) == 14
    assert "shared_code" not in httpx.get(url, headers=AUTH).json()  # shown once
    register_url = f"{gateway.url}/events/{event['id']}/register"
    assert error(httpx.post(register_url, json={"name": "A", "code": "first-code-1"}), 403)["code"] == "bad_code"
    assert httpx.post(register_url, json={"name": "A", "code": code}).status_code == 201
    assert httpx.patch(url, json={"shared_code": None}, headers=AUTH).json()["needs_code"] is False
    assert httpx.post(register_url, json={"name": "B"}).status_code == 201
    error(httpx.patch(url, json={"shared_code": "short"}, headers=AUTH), 400, "shared_code")


async def test_attendees_search_page_usage_and_revoke(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    event = open_event(gateway, timezone="Asia/Tokyo")
    ann = register(gateway, event["id"], email="ann.lee@example.com")
    register(gateway, event["id"], name="Bo  Åström")
    register(gateway, event["id"], name="under_score")
    for _ in range(2):
        assert chat(gateway, ann["key"]).status_code == 200
    url = f"{gateway.url}/admin/events/{event['id']}/attendees"

    # A row reaches the ledger just after its answer went out: wait for the second one, bounded.
    deadline = time.monotonic() + 60
    while True:
        everyone = httpx.get(url, headers=AUTH).json()
        if everyone["data"][0]["usage"]["requests"] >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert everyone["total"] == 3 and everyone["has_more"] is False
    first = everyone["data"][0]
    assert first["id"] == ann["key_id"] and first["usage"]["requests"] == 2 and first["usage"]["tokens"] > 0
    assert first["today"]["requests"] == 2 and everyone["data"][1]["usage"] == {"requests": 0, "errors": 0, "tokens": 0}

    page = httpx.get(f"{url}?limit=2&offset=0", headers=AUTH).json()
    assert len(page["data"]) == 2 and page["has_more"] is True and page["total"] == 3
    assert httpx.get(f"{url}?limit=2&offset=2", headers=AUTH).json()["has_more"] is False

    def names(search: str) -> list[str]:
        response = httpx.get(url, params={"search": search}, headers=AUTH)
        assert response.status_code == 200, response.text
        return [a["name"] for a in response.json()["data"]]

    assert names("ANN.LEE") == ["ann.lee@example.com"]
    assert names("åSTRÖM") == ["Bo  Åström"]
    assert names("bo åström") == ["Bo  Åström"]  # inner spaces collapsed, as registration compares names
    assert names("_") == ["under_score"]  # literal, not LIKE's any-character
    assert names("%") == []
    for sqlish in ("' OR '1'='1", "%' OR 1=1 --", "\\", "'); DROP TABLE keys; --"):
        assert names(sqlish) == []
    assert len(names("")) == 3
    error(httpx.get(url, params={"search": "x" * 201}, headers=AUTH), 400, "search")
    error(httpx.get(url, params={"search": "a\x1b[2J"}, headers=AUTH), 400, "search")
    error(httpx.get(url, params={"search": "a\x00"}, headers=AUTH), 400, "search")

    revoked = httpx.post(f"{url}/{ann['key_id']}/revoke", headers=AUTH)
    assert revoked.json() == {"id": ann["key_id"], "revoked": True}
    assert chat(gateway, ann["key"]).status_code == 401
    assert httpx.get(url, headers=AUTH).json()["data"][0]["revoked_at"] is not None
    other = open_event(gateway)
    error(httpx.post(f"{gateway.url}/admin/events/{other['id']}/attendees/{ann['key_id']}/revoke", headers=AUTH), 404)
    error(httpx.post(f"{url}/key_missing/revoke", headers=AUTH), 404)
    error(httpx.get(f"{gateway.url}/admin/events/evt_missing/attendees", headers=AUTH), 404)


async def test_live_summary(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    event = open_event(gateway, daily_requests=3)
    ann = register(gateway, event["id"], name="Ann")
    bo = register(gateway, event["id"], name="Bo <script>")
    statuses = [chat(gateway, ann["key"]).status_code for _ in range(4)] + [chat(gateway, bo["key"]).status_code]
    assert statuses == [200, 200, 200, 429, 200]
    # The live view reads the ledger, which is written in batches (access.usage_flush_seconds): wait for the last
    # row, bounded, instead of racing the flush.
    deadline = time.monotonic() + 60
    while True:
        live = httpx.get(f"{gateway.url}/admin/events/{event['id']}/live?minutes=5&top=1", headers=AUTH)
        assert live.status_code == 200, live.text
        body = live.json()
        if body["requests"] >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert body["requests"] == 5 and body["errors"] == 1 and body["tokens"] > 0
    assert len(body["per_minute"]) == 5 and sum(m["requests"] for m in body["per_minute"]) == 5
    assert body["requests_per_minute"] == 1.0 and body["attendees"] == 2
    assert [(t["key_id"], t["name"], t["requests"]) for t in body["top_attendees"]] == [(ann["key_id"], "Ann", 4)]
    default = httpx.get(f"{gateway.url}/admin/events/{event['id']}/live", headers=AUTH).json()
    assert default["minutes"] == 15 and len(default["top_attendees"]) == 2
    for query, param in (("minutes=0", "minutes"), ("minutes=181", "minutes"), ("top=1000", "top"), ("top=x", "top")):
        error(httpx.get(f"{gateway.url}/admin/events/{event['id']}/live?{query}", headers=AUTH), 400, param)
    error(httpx.get(f"{gateway.url}/admin/events/evt_nope/live", headers=AUTH), 404)


async def test_registration_description(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    event = open_event(gateway, shared_code="open-sesame", max_attendees=1, name="Hack <b>")
    url = f"{gateway.url}/events/{event['id']}/register"
    described = httpx.get(url)  # public: no key
    assert described.status_code == 200 and described.headers["content-type"].startswith("application/json")
    body = described.json()
    assert body["registration"] == "open" and body["needs_code"] is True and "code" in body["fields"]
    assert body["event"]["name"] == "Hack <b>" and body["event"]["models"] == ["gpt-4o"]
    assert "open-sesame" not in described.text and "shared_code_hash" not in described.text
    register(gateway, event["id"], name="Ann", code="open-sesame")
    assert httpx.get(url).json()["registration"] == "full"
    assert "Ann" not in httpx.get(url).text
    soon = open_event(
        gateway, starts_at=local("UTC", dt.timedelta(days=30)), ends_at=local("UTC", dt.timedelta(days=31))
    )
    assert httpx.get(f"{gateway.url}/events/{soon['id']}/register").json()["registration"] == "not_open"
    past = create_event(gateway, starts_at="2020-01-01T09:00:00Z", ends_at="2020-01-01T17:00:00Z", timezone="UTC")
    assert httpx.get(f"{gateway.url}/events/{past['id']}/register").json()["registration"] == "closed"
    error(httpx.get(f"{gateway.url}/events/evt_missing/register"), 404)
    error(httpx.get(f"{gateway.url}/events/%00/register"), 404)
    assert httpx.put(url).status_code == 405


def admin_endpoints(gateway: Any, event_id: str, key_id: str) -> list[tuple[str, str, Any]]:
    base = f"{gateway.url}/admin/events"
    return [
        ("GET", base, None),
        ("POST", base, {"name": "x", "timezone": "UTC", "starts_at": "2030-01-01T09:00", "ends_at": "2030-01-02"}),
        ("GET", f"{base}/{event_id}", None),
        ("PATCH", f"{base}/{event_id}", {"name": "pwned"}),
        ("DELETE", f"{base}/{event_id}", None),
        ("GET", f"{base}/{event_id}/attendees", None),
        ("POST", f"{base}/{event_id}/attendees/{key_id}/revoke", None),
        ("DELETE", f"{base}/{event_id}/attendees/{key_id}", None),
        ("GET", f"{base}/{event_id}/live", None),
    ]


async def test_every_admin_endpoint_refuses_callers_without_the_master_key(keyed: Any) -> None:
    start, keys, _, _ = keyed
    gateway = start()
    event = open_event(gateway)
    attendee = register(gateway, event["id"], name="Ann")
    plain = await keys.make()
    for method, url, body in admin_endpoints(gateway, event["id"], attendee["key_id"]):
        for headers in (
            {},
            {"authorization": f"Bearer {attendee['key']}"},
            {"authorization": f"Bearer {plain}"},
            {"api-key": "master-key-keys-tests-0"},
            {"authorization": "Basic bWFzdGVy"},
        ):
            response = httpx.request(method, url, json=body, headers=headers)
            assert error(response, 401)["type"] == "invalid_request_error", (method, url, headers)
    # Nothing changed: the event, its name and its attendee are as they were.
    assert httpx.get(f"{gateway.url}/admin/events/{event['id']}", headers=AUTH).json()["name"] == event["name"]
    assert chat(gateway, attendee["key"]).status_code == 200


def test_admin_endpoints_are_off_without_a_master_key(start_gateway: Any, emulator_server: Any, tmp_path: Path) -> None:
    gateway = start_gateway(
        auth="keys",
        data_dir=str(tmp_path),
        deployments=[{"model": "gpt-4o", "endpoint": emulator_server.url, "api_key": EMULATOR_KEY}],
    )
    for method, url, body in admin_endpoints(gateway, "evt_1", "key_1"):
        assert error(httpx.request(method, url, json=body), 403)["code"] == "admin_disabled"


async def test_changes_are_bounded_and_named(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    event = open_event(gateway)
    url = f"{gateway.url}/admin/events/{event['id']}"

    def patch(body: dict[str, Any], param: str) -> None:
        error(httpx.patch(url, json=body, headers=AUTH), 400, param)

    for bad in HOSTILE:
        patch({"name": f"Hack{bad}"}, "name")
        patch({"models": [f"gpt{bad}"]}, "models.0")
    patch({"name": "x" * 201}, "name")
    patch({"name": None}, "name")
    patch({"starts_at": "1900-01-01T00:00:00Z"}, "starts_at")
    patch({"ends_at": "9999-12-31T23:59:59Z"}, "ends_at")
    patch({"ends_at": "not a date"}, "ends_at")
    patch({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at")  # before it starts
    patch({"starts_at": "2199-12-31T00:00:00Z"}, "starts_at")  # after it ends
    patch({"timezone": "Mars/Olympus"}, "timezone")
    patch({"extend": "999d"}, "extend")
    patch({"extend": "0m"}, "extend")
    patch({"extend": "forever"}, "extend")
    patch({"extend": "2h", "ends_at": "2030-01-01T00:00:00Z"}, "extend")
    patch({"close": True, "extend": "2h"}, "close")
    patch({"close": False}, "close")
    patch({"daily_requests": 0}, "daily_requests")
    patch({"daily_tokens": 2**53}, "daily_tokens")
    patch({"max_attendees": -1}, "max_attendees")
    patch({"models": ["m"] * 257}, "models")
    patch({"secret_field": 1}, "secret_field")
    error(httpx.patch(url, content=b"{not json", headers=AUTH), 400)
    error(httpx.patch(url, content=b"[" * 60_000, headers=AUTH), 400)
    error(httpx.patch(url, content=b"x" * (65 * 1024), headers=AUTH), 413)
    assert httpx.get(url, headers=AUTH).json() == {**event, "attendees": 0}  # none of it was stored

    admin = f"{gateway.url}/admin/events"
    for query, param in (
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("limit=-1", "limit"),
        ("offset=-1", "offset"),
        ("limit=1e3", "limit"),
    ):
        error(httpx.get(f"{admin}?{query}", headers=AUTH), 400, param)
        error(httpx.get(f"{admin}/{event['id']}/attendees?{query}", headers=AUTH), 400, param)
    for missing in ("evt_missing", "evt_' OR '1'='1", "%00", "x" * 300):
        for method, target, body in (
            ("GET", f"{admin}/{missing}", None),
            ("PATCH", f"{admin}/{missing}", {"name": "x"}),
            ("DELETE", f"{admin}/{missing}", None),
            ("GET", f"{admin}/{missing}/attendees", None),
            ("GET", f"{admin}/{missing}/live", None),
            ("POST", f"{admin}/{missing}/attendees/key_x/revoke", None),
        ):
            error(httpx.request(method, target, json=body, headers=AUTH), 404)


async def test_organiser_on_postgresql(postgres_url: str) -> None:
    """The same service on PostgreSQL: saving copies onto attendee keys, search is case-blind and literal,
    deleting revokes, the live view and attendee usage read the ledger and its rollups."""
    db = await connect_database(postgres_url)
    await migrate(db)
    events, keys = EventStore(db, cache_seconds=0), KeyStore(db, cache_seconds=0)
    ledger = UsageLedger(db)
    organiser = EventOrganiser(events, keys, ledger.flush)
    now = dt.datetime.now(dt.UTC)
    made = await organiser.create(
        EventRequest.model_validate(
            {
                "name": "PG day",
                "timezone": "Europe/Berlin",
                "starts_at": (now - dt.timedelta(hours=1)).isoformat(),
                "ends_at": (now + dt.timedelta(hours=1)).isoformat(),
                "daily_requests": 5,
            }
        )
    )
    event = made.event
    ann, _ = await keys.create(KeySpec("Ann_Lee", None, event.limits, event.ends_at, event.id))
    bo, _ = await keys.create(KeySpec("Bo%", None, event.limits, event.ends_at, event.id))
    at = now.timestamp()
    for key_id, status in ((ann.id, 200), (ann.id, 429), (bo.id, 200)):
        ledger.record(UsageRow(at, key_id, event.id, "gpt-4o", "chat-4o", "/v1/chat/completions", status, 5, 7, 0, 1))

    page = await organiser.attendees(event.id, search="ANN_", limit=10, offset=0)
    assert [a.key.name for a in page.attendees] == ["Ann_Lee"] and page.total == 1
    assert page.attendees[0].usage == {"requests": 2, "errors": 1, "tokens": 24}
    assert (await organiser.attendees(event.id, search="%", limit=10, offset=0)).total == 1  # only "Bo%"
    assert (await organiser.attendees(event.id, search="' OR 1=1 --", limit=10, offset=0)).total == 0
    with pytest.raises(InvalidRequest):
        await organiser.attendees(event.id, search="a\x00", limit=10, offset=0)

    live = await organiser.live(event.id, minutes=3, top=5)
    assert live["requests"] == 3 and live["errors"] == 1 and live["top_attendees"][0]["name"] == "Ann_Lee"

    changed = await organiser.update(event.id, EventUpdate(daily_requests=9, extend="1h", models=["gpt-4o"]))
    assert changed.event.limits.daily_requests == 9
    stored = await keys.get(ann.id)
    assert stored is not None and stored.limits.daily_requests == 9 and stored.models == ("gpt-4o",)
    assert stored.expires_at == changed.event.ends_at
    await organiser.delete(event.id)
    assert (await keys.get(bo.id)).revoked_at is not None  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        await organiser.show(event.id)
    with pytest.raises(NotFound):
        await organiser.update(event.id, EventUpdate(name="x"))
    await ledger.close()
    await db.close()
    await asyncio.sleep(0)

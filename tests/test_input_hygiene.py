"""Input hygiene at the admin API and registration, and robust reading of rows stored before it existed.

Hostile names are refused with a 400 naming the field; dates and caps are bounded. Rows already stored out of range
(written by an older gateway or straight into the database) must list, show and authenticate without a 500, and
`keys list` must never hand a terminal a raw escape sequence.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from aoai_gateway.labels import printable
from aoai_gateway.moments import iso, wall, zone_or_utc
from aoai_gateway.store import KeyStore, connect_database, migrate
from aoai_gateway.store.keys import hash_secret

from .keyed import chat
from .test_events import AUTH, create_event, local

HOSTILE = ["\x1b[2J", "a\nb", "tab\there", "\x7f", "\x85", "\u202eevil", "\u2066iso", "nul\x00", "\u2028"]


def window() -> dict[str, str]:
    return {"starts_at": local("UTC", -dt.timedelta(hours=1)), "ends_at": local("UTC", dt.timedelta(hours=2))}


def refused(response: httpx.Response, param: str) -> bool:
    error = response.json()["error"]
    return response.status_code == 400 and error["param"] == param and "Traceback" not in error["message"]


@pytest.mark.parametrize("bad", HOSTILE, ids=repr)
async def test_control_characters_are_refused_in_every_name(keyed: Any, bad: str) -> None:
    start, _, _, _ = keyed
    gateway = start()
    keys_url, events_url = f"{gateway.url}/admin/keys", f"{gateway.url}/admin/events"
    assert refused(httpx.post(keys_url, json={"name": f"ci{bad}"}, headers=AUTH), "name")
    assert refused(httpx.post(keys_url, json={"name": "ci", "models": [f"gpt{bad}"]}, headers=AUTH), "models.0")
    made = httpx.post(keys_url, json={"name": "ci"}, headers=AUTH).json()
    assert refused(httpx.patch(f"{keys_url}/{made['id']}", json={"name": bad}, headers=AUTH), "name")
    event = {"name": "Hack", "timezone": "UTC", **window()}
    assert refused(httpx.post(events_url, json={**event, "name": f"Hack{bad}"}, headers=AUTH), "name")
    assert refused(httpx.post(events_url, json={**event, "models": [bad]}, headers=AUTH), "models.0")
    assert refused(
        httpx.post(events_url, json={**event, "shared_code": f"long-code{bad}"}, headers=AUTH), "shared_code"
    )
    registered = create_event(gateway, timezone="UTC", **window())
    url = f"{gateway.url}/events/{registered['id']}/register"
    assert refused(httpx.post(url, json={"name": f"Ann{bad}"}), "name")
    assert refused(httpx.post(url, json={"email": f"ann{bad}@example.com"}), "email")
    assert httpx.get(f"{gateway.url}/admin/events/{registered['id']}/attendees", headers=AUTH).json()["data"] == []


async def test_names_are_bounded_and_emails_shaped(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    event = create_event(gateway, timezone="UTC", **window())
    url = f"{gateway.url}/events/{event['id']}/register"
    assert refused(httpx.post(url, json={"name": "x" * 201}), "name")
    assert refused(httpx.post(url, json={"name": "   "}), "name")
    for bad in ("ann", "ann@", "@example.com", "ann@example", "a b@example.com", "ann@@example.com", "x" * 65 + "@a.b"):
        assert refused(httpx.post(url, json={"email": bad}), "email"), bad
    # Unicode that is not a control character is a name like any other.
    ok = httpx.post(url, json={"name": "Zoë 李 مريم"})
    assert ok.status_code == 201 and ok.json()["event"]["id"] == event["id"]


OUT_OF_RANGE_EVENTS = [
    ({"starts_at": "9999-12-31T23:00:00", "ends_at": "9999-12-31T23:30:00", "timezone": "Etc/GMT+12"}, "starts_at"),
    ({"starts_at": "1999-12-31T23:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "starts_at"),
    ({"starts_at": "2030-01-01T00:00:00Z", "ends_at": "2200-01-01T00:00:01Z"}, "ends_at"),
    ({"starts_at": "0001-01-01T00:00:00+14:00", "ends_at": "2030-01-01T00:00:00Z"}, "starts_at"),
    ({"daily_requests": 2**53}, "daily_requests"),
    ({"daily_tokens": 0}, "daily_tokens"),
    ({"max_tokens": -1}, "max_tokens"),
    ({"max_attendees": 0}, "max_attendees"),
    ({"max_attendees": 10**30}, "max_attendees"),
    ({"models": ["m"] * 1000}, "models"),
]


async def test_event_dates_and_caps_are_bounded(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    base = {"name": "Hack", "timezone": "UTC", **window()}
    for fields, param in OUT_OF_RANGE_EVENTS:
        answer = httpx.post(f"{gateway.url}/admin/events", json={**base, **fields}, headers=AUTH)
        assert refused(answer, param), (fields, answer.text)
    edge = {"starts_at": "2199-12-31T10:00:00", "ends_at": "2199-12-31T11:00:00", "timezone": "Pacific/Kiritimati"}
    assert httpx.post(f"{gateway.url}/admin/events", json={**base, **edge}, headers=AUTH).status_code == 201


async def test_key_expiry_and_caps_are_bounded(keyed: Any) -> None:
    start, _, _, _ = keyed
    gateway = start()
    url = f"{gateway.url}/admin/keys"
    for fields, param in [
        ({"expires_at": -1e308}, "expires_at"),
        ({"expires_at": 1e308}, "expires_at"),
        ({"expires_at": "9999-12-31T23:59:59-12:00"}, "expires_at"),
        ({"expires_at": "1970-01-01T00:00:00Z"}, "expires_at"),
        ({"rpm": 2**53}, "rpm"),
        ({"budget_tokens": 2**64}, "budget_tokens"),
        ({"tpm": 0}, "tpm"),
    ]:
        assert refused(httpx.post(url, json={"name": "ci", **fields}, headers=AUTH), param), fields
    key = httpx.post(url, json={"name": "ci", "rpm": 2**53 - 1}, headers=AUTH)
    assert key.status_code == 201
    assert refused(httpx.patch(f"{url}/{key.json()['id']}", json={"expires_at": -1e308}, headers=AUTH), "expires_at")
    since = httpx.get(f"{gateway.url}/admin/usage?since=0001-01-01T00:00:00%2B14:00", headers=AUTH)
    assert since.status_code in (200, 400)


async def insert_event(db: Any, event_id: str, starts: float, ends: float, zone: str, name: str = "Stored") -> None:
    await db.execute(
        "INSERT INTO events (id, name, starts_at, ends_at, timezone, created_at, attendees)"
        " VALUES (?, ?, ?, ?, ?, ?, 0)",
        [event_id, name, starts, ends, zone, time.time()],
    )


async def insert_key(db: Any, key_id: str, secret: str, **columns: Any) -> None:
    names = ["id", "name", "secret_hash", "prefix", "created_at", *columns]
    values = [key_id, key_id, hash_secret(secret), secret[:10], time.time(), *columns.values()]
    await db.execute(f"INSERT INTO keys ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", values)


async def test_rows_stored_out_of_range_never_answer_500(keyed: Any) -> None:
    start, _, db, _ = keyed
    gateway = start()
    # 9999-12-31 23:00 at UTC-12 is year 10000 in UTC: no datetime can hold it.
    year_10000 = dt.datetime(9999, 12, 31, 23, tzinfo=ZoneInfo("Etc/GMT+12")) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    now = time.time()
    await insert_event(db, "evt_9999", now - 3600, year_10000.total_seconds(), "Etc/GMT+12")
    await insert_event(db, "evt_huge", -1e308, 1e308, "Mars/Olympus", name="\x1b[2Jhostile\u202e")
    await insert_event(db, "evt_past", -1e308, -1e307, "UTC")
    secrets = {
        "expired": "sk-gw-stored-expired-000000000000000",
        "event": "sk-gw-stored-event-0000000000000000",
        "huge": "sk-gw-stored-huge-00000000000000000",
        "capped": "sk-gw-stored-capped-0000000000000000",
    }
    await insert_key(db, "key_expired", secrets["expired"], expires_at=-1e308)
    await insert_key(db, "key_event", secrets["event"], event_id="evt_9999", expires_at=year_10000.total_seconds())
    await insert_key(db, "key_huge", secrets["huge"], event_id="evt_huge", expires_at=1e308)
    await insert_key(db, "key_capped", secrets["capped"], daily_requests=2**62, rpm=-5, name="\x1b]0;pwned\x07")

    def ok(response: httpx.Response) -> httpx.Response:
        assert response.status_code < 500, response.text
        return response

    listed = ok(httpx.get(f"{gateway.url}/admin/events", headers=AUTH)).json()["data"]
    by_id = {e["id"]: e for e in listed}
    assert by_id["evt_9999"]["ends_at"] == repr(year_10000.total_seconds())  # no calendar shows year 10000
    assert by_id["evt_huge"]["timezone"] == "Mars/Olympus"
    for event_id in ("evt_9999", "evt_huge", "evt_past"):
        ok(httpx.get(f"{gateway.url}/admin/events/{event_id}/attendees", headers=AUTH))
        ok(httpx.post(f"{gateway.url}/events/{event_id}/register", json={"name": "Ann"}))
    ok(httpx.get(f"{gateway.url}/admin/keys", headers=AUTH))
    for key_id in ("key_expired", "key_event", "key_huge", "key_capped"):
        ok(httpx.get(f"{gateway.url}/admin/keys/{key_id}", headers=AUTH))
    expired = ok(chat(gateway, secrets["expired"]))
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "key_expired"
    assert ok(chat(gateway, secrets["event"])).status_code == 200
    assert ok(chat(gateway, secrets["huge"])).status_code in (200, 403)
    assert ok(chat(gateway, secrets["capped"])).status_code == 429
    registered = ok(httpx.post(f"{gateway.url}/events/evt_9999/register", json={"name": "Bo"}))
    assert registered.status_code == 201 and chat(gateway, registered.json()["key"]).status_code == 200
    await asyncio.sleep(0)


def test_keys_list_escapes_hostile_stored_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aoai_gateway.cli import main

    monkeypatch.setenv("AOAI_GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    hostile = "\x1b[2J\x1b]0;pwned\x07\u202etxt.exe\x9b"

    async def store() -> None:
        db = await connect_database(f"sqlite:///{tmp_path / 'gateway.db'}")
        await migrate(db)
        await insert_key(db, "key_hostile", "sk-gw-hostile-00000000000000000000", expires_at=-1e308)
        await db.execute("UPDATE keys SET name = ?, models = ? WHERE id = 'key_hostile'", [hostile, '["\\u001b[31m"]'])
        await KeyStore(db).list()
        await db.close()

    asyncio.run(store())
    assert main(["keys", "list"]) == 0
    out = capsys.readouterr().out
    assert "key_hostile" in out and "\\x1b[2J\\x1b]0;pwned\\x07\\u202etxt.exe\\x9b" in out
    assert not any(ch in out for ch in "\x1b\x07\u202e\x9b")
    assert main(["keys", "show", "key_hostile"]) == 0
    assert "\x1b" not in capsys.readouterr().out  # JSON escapes it
    assert main(["keys", "create", "--name", "evil\x1b[2J"]) == 1
    assert "\x1b" not in capsys.readouterr().err


def test_rendering_falls_back_instead_of_raising() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    assert iso(0.0, tokyo) == "1970-01-01T09:00:00+09:00"
    far = dt.datetime(9999, 12, 31, 23, tzinfo=dt.UTC).timestamp()
    assert iso(far, ZoneInfo("Etc/GMT-14")) == "9999-12-31T23:00:00+00:00"  # UTC when the zone cannot show it
    assert iso(-1e308) == "-1e+308" and iso(float("inf")) == "inf"
    assert wall(1e308, tokyo, "Asia/Tokyo") == "1e+308"
    assert zone_or_utc("Mars/Olympus").key == "UTC" and zone_or_utc("../../etc/passwd").key == "UTC"
    assert printable("ok\x1b[0m\u202e") == "ok\\x1b[0m\\u202e" and printable("Zoë 李") == "Zoë 李"

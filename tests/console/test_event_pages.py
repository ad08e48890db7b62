"""An event's organiser pages over HTTP (the real app, real SQLite): edit, extend, close, a new shared code,
delete with a confirmation step, attendees with search and paging, revoke, the live view; and the attacker's
side of each (no session, no CSRF token, hostile names, unknown ids, bad dates)."""

from __future__ import annotations

import datetime as dt
import io
import time
from typing import Any

import httpx
import pytest

from aoai_gateway.console import events as event_pages

from ..keyed import MASTER
from .conftest import AUTH, csrf_of, make_event
from .test_admin_pages import chat, signed_in

ACTIONS = ("", "/extend", "/close", "/code", "/delete")


def api_event(gateway: Any, event_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{gateway.url}/admin/events/{event_id}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def epoch(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def register(gateway: Any, event_id: str, **who: str) -> dict[str, Any]:
    answer = httpx.post(f"{gateway.url}/events/{event_id}/register", json=who)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_the_event_pages_refuse_strangers(console_gateway: Any) -> None:
    gateway = console_gateway()
    event = make_event(gateway)
    base = f"/console/admin/events/{event['id']}"
    with httpx.Client(base_url=gateway.url, timeout=30) as stranger:
        for path in (base, f"{base}/live", f"{base}/delete"):
            assert stranger.get(path).headers["location"] == "/console/sign-in", path
        token = csrf_of(stranger.get("/console/sign-in"))
        for action in ACTIONS:
            refused = stranger.post(f"{base}{action}", data={"csrf": token, "by": "1h", "name": "pwned"})
            assert refused.status_code == 401, action
    assert api_event(gateway, event["id"])["name"] == "Hack Day"
    assert api_event(gateway, event["id"])["ends_at"] == event["ends_at"]


def test_every_post_needs_its_csrf_token(console_gateway: Any) -> None:
    gateway = console_gateway()
    event = make_event(gateway)
    attendee = register(gateway, event["id"], name="Ann")
    base = f"/console/admin/events/{event['id']}"
    with signed_in(gateway) as client:
        for action in (*ACTIONS, f"/attendees/{attendee['key_id']}/revoke"):
            for form in ({"by": "1h", "name": "x"}, {"csrf": "forged", "by": "1h", "name": "x"}):
                refused = client.post(f"{base}{action}", data=form)
                assert refused.status_code == 403 and "did not come from this site" in refused.text, action
    after = api_event(gateway, event["id"])
    assert after["name"] == "Hack Day" and after["ends_at"] == event["ends_at"]
    assert (
        httpx.get(f"{gateway.url}/admin/events/{event['id']}/attendees", headers=AUTH).json()["data"][0]["revoked_at"]
        is None
    )


def test_edit_the_event(console_gateway: Any) -> None:
    gateway = console_gateway()
    event = make_event(gateway, max_tokens=500)
    base = f"/console/admin/events/{event['id']}"
    with signed_in(gateway) as client:
        page = client.get(base)
        token = csrf_of(page)
        assert 'value="Hack Day"' in page.text and 'value="500"' in page.text
        shown = page.text.split('name="ends_at" type="datetime-local" required value="', 1)[1].split('"', 1)[0]
        form = {
            "csrf": token,
            "name": "Hack Day",
            "starts_at": page.text.split('name="starts_at" type="datetime-local" required value="', 1)[1][:16],
            "ends_at": shown,
            "models": "gpt-4o, whisper-1",
            "daily_requests": "10",
            "daily_tokens": "",
            "max_tokens": "",
            "max_attendees": "30",
        }
        for change, message in (
            ({"ends_at": "2019-01-01T09:00"}, "ends_at must be after starts_at"),
            ({"starts_at": "2026-13-45T99:99"}, "starts_at"),
            ({"ends_at": "next tuesday"}, "ends_at"),
            ({"models": "gpt-9"}, "serves no gpt-9"),
            ({"daily_requests": "-1"}, "daily_requests"),
            ({"max_attendees": "0"}, "max_attendees"),
            ({"name": "a\x00b"}, "name"),
        ):
            refused = client.post(base, data={**form, **change})
            assert refused.status_code == 400 and message in refused.text, (change, refused.text[-600:])
            assert "400: " in refused.text and "<script" not in refused.text.split("</head>")[1]
        hostile = "<script>alert(1)</script> & Co"
        saved = client.post(base, data={**form, "name": hostile})
        assert saved.status_code == 303 and saved.headers["location"] == f"{base}?done=saved"
        shown_page = client.get(saved.headers["location"])
        assert hostile not in shown_page.text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in shown_page.text
        assert "The event was saved." in shown_page.text
        after = api_event(gateway, event["id"])
        assert after["name"] == hostile and after["ends_at"] == event["ends_at"]  # unchanged time: left alone
        assert after["models"] == ["gpt-4o", "whisper-1"] and after["max_attendees"] == 30
        assert after["daily_requests"] == 10 and after["max_tokens"] is None
        later = client.post(base, data={**form, "ends_at": "2199-01-01T18:00", "models": ""})
        assert later.status_code == 303
        after = api_event(gateway, event["id"])
        assert after["models"] is None and after["ends_at"] == "2199-01-01T18:00:00+01:00"  # in the event's zone
        assert client.get(f"{base}?done=<script>").text.count("The event was") == 0


def test_extend_close_and_a_new_code(console_gateway: Any) -> None:
    gateway = console_gateway()
    event = make_event(gateway, shared_code="open-sesame-1")
    attendee = register(gateway, event["id"], name="Ann", code="open-sesame-1")
    base = f"/console/admin/events/{event['id']}"
    with signed_in(gateway) as client:
        token = csrf_of(client.get(base))
        for by, seconds in (("1h", 3600), ("1d", 86400)):
            before = epoch(api_event(gateway, event["id"])["ends_at"])
            extended = client.post(f"{base}/extend", data={"csrf": token, "by": by})
            assert extended.status_code == 303 and extended.headers["location"] == f"{base}?done=extended-{by}"
            assert epoch(api_event(gateway, event["id"])["ends_at"]) == before + seconds
        assert "extended by one day" in client.get(f"{base}?done=extended-1d").text
        for by in ("2y", "", "1h<script>"):
            refused = client.post(f"{base}/extend", data={"csrf": token, "by": by})
            assert (
                refused.status_code == 400 and "extend by 1h or 1d" in refused.text and "<script>" not in refused.text
            )
        closed = client.post(f"{base}/close", data={"csrf": token})
        assert closed.status_code == 303 and closed.headers["location"] == f"{base}?done=closed"
        assert epoch(api_event(gateway, event["id"])["ends_at"]) <= time.time()
        answer = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {attendee['key']}"},
            timeout=30,
        )
        assert answer.status_code in (401, 403), answer.text
        reopened = client.post(f"{base}/extend", data={"csrf": token, "by": "1h"})  # from now: open again
        assert reopened.status_code == 303
        assert epoch(api_event(gateway, event["id"])["ends_at"]) > time.time() + 3000
        rotated = client.post(f"{base}/code", data={"csrf": token})
        assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
        code = rotated.text.split('id="secret" readonly value="', 1)[1].split('"', 1)[0]
        assert code not in client.get(base).text
    old = httpx.post(f"{gateway.url}/events/{event['id']}/register", json={"name": "Bo", "code": "open-sesame-1"})
    assert old.status_code in (401, 403), old.text
    register(gateway, event["id"], name="Bo", code=code)


def test_delete_asks_first(console_gateway: Any) -> None:
    gateway = console_gateway()
    event = make_event(gateway, name="<b>Doomed</b>")
    attendee = register(gateway, event["id"], name="Ann")
    base = f"/console/admin/events/{event['id']}"
    with signed_in(gateway) as client:
        page = client.get(base)
        assert f'href="{base}/delete"' in page.text
        confirm = client.get(f"{base}/delete")
        assert (
            confirm.status_code == 200 and "&lt;b&gt;Doomed&lt;/b&gt;" in confirm.text and "1 attendee" in confirm.text
        )
        token = csrf_of(confirm)
        assert api_event(gateway, event["id"])["name"] == "<b>Doomed</b>"  # looking at the question deletes nothing
        gone = client.post(f"{base}/delete", data={"csrf": token})
        assert gone.status_code == 303 and gone.headers["location"] == "/console/admin"
        assert client.get(base).status_code == 404
        assert "Doomed" not in client.get("/console/admin").text
        assert client.post(f"{base}/delete", data={"csrf": token}).status_code == 404
    assert httpx.get(f"{gateway.url}/admin/events/{event['id']}", headers=AUTH).status_code == 404
    chat_answer = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {attendee['key']}"},
        timeout=30,
    )
    assert chat_answer.status_code == 401


def test_unknown_ids_are_404(console_gateway: Any) -> None:
    gateway = console_gateway()
    event = make_event(gateway)
    other = make_event(gateway, name="Other")
    stray = register(gateway, other["id"], name="Stray")
    with signed_in(gateway) as client:
        token = csrf_of(client.get("/console/admin"))
        for event_id in ("evt_nope", "<script>", "a" * 300, "%00"):
            base = f"/console/admin/events/{event_id}"
            for path in (base, f"{base}/live", f"{base}/delete"):
                missing = client.get(path)
                assert missing.status_code == 404 and "<script>" not in missing.text, path
            for action in ACTIONS:
                assert client.post(f"{base}{action}", data={"csrf": token, "by": "1h"}).status_code == 404, action
        base = f"/console/admin/events/{event['id']}"
        for key_id in ("key_nope", stray["key_id"]):
            assert client.post(f"{base}/attendees/{key_id}/revoke", data={"csrf": token}).status_code == 404
    assert (
        httpx.get(f"{gateway.url}/admin/events/{other['id']}/attendees", headers=AUTH).json()["data"][0]["revoked_at"]
        is None
    )


def test_attendees_search_page_and_revoke(console_gateway: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_pages, "PAGE", 2)
    gateway = console_gateway(console={"process": False})  # the pages of this process see the patched PAGE
    event = make_event(gateway)
    people = [
        register(gateway, event["id"], name="Ann"),
        register(gateway, event["id"], email="bo@example.org"),
        register(gateway, event["id"], name="<img src=x onerror=alert(1)>"),
    ]
    chat(gateway, people[0]["key"])
    base = f"/console/admin/events/{event['id']}"
    with signed_in(gateway) as client:
        first = client.get(base)
        assert "3 attendees" in first.text and "1 to 2 shown" in first.text
        assert f'href="{base}?q=&amp;offset=2"' in first.text
        second = client.get(f"{base}?offset=2")
        assert "&lt;img src=x onerror=alert(1)&gt;" in second.text and "<img src=x" not in second.text
        assert f'href="{base}?q=&amp;offset=0"' in second.text
        deadline = time.monotonic() + 60
        while True:  # the ledger is written after the answer; the page flushes it, so this is one round or two
            found = client.get(f"{base}?q=ANN")
            if "<td>1</td>" in found.text or time.monotonic() > deadline:
                break
        assert "1 attendee matches" in found.text and ">Ann<" in found.text and "bo@example.org" not in found.text
        cells = found.text.split(">Ann</th>", 1)[1].split("</tr>", 1)[0]
        assert cells.count("<td>1</td>") == 2  # one request today, one ever
        assert "bo@example.org" in client.get(f"{base}?q=EXAMPLE.org").text
        nobody = client.get(f"{base}?q=<script>").text
        assert "No attendee matches" in nobody and "&lt;script&gt;" in nobody and "<script>" not in nobody
        assert client.get(f"{base}?offset=-1").status_code == 400
        assert client.get(f"{base}?offset=abc").status_code == 400
        assert client.get(f"{base}?q=a%00b").status_code == 400
        token = csrf_of(found)
        revoked = client.post(
            f"{base}/attendees/{people[0]['key_id']}/revoke", data={"csrf": token, "q": "ANN", "offset": "0"}
        )
        assert revoked.status_code == 303 and revoked.headers["location"] == f"{base}?q=ANN&offset=0&done=revoked"
        after = client.get(revoked.headers["location"])
        assert "revoked" in after.text and "key was revoked" in after.text
        assert f"/attendees/{people[0]['key_id']}/revoke" not in after.text
        hostile = client.post(
            f"{base}/attendees/{people[1]['key_id']}/revoke", data={"csrf": token, "offset": "//evil.example"}
        )
        assert hostile.headers["location"] == f"{base}?done=revoked"
    refused = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {people[0]['key']}"},
        timeout=30,
    )
    assert refused.status_code == 401


def test_the_live_view(console_gateway: Any) -> None:
    gateway = console_gateway()
    event = make_event(gateway)
    attendee = register(gateway, event["id"], name="<i>Zed</i>")
    for _ in range(2):
        chat(gateway, attendee["key"])
    with signed_in(gateway) as client:
        deadline = time.monotonic() + 60
        while True:  # the ledger is written after the answer; the page flushes it, so this is one round or two
            live = client.get(f"/console/admin/events/{event['id']}/live")
            if '<dd data-live="requests">2</dd>' in live.text or time.monotonic() > deadline:
                break
        assert live.status_code == 200 and '<dd data-live="requests">2</dd>' in live.text, live.text
        assert "/console/static/live.js?v=" in live.text and "<script" not in live.text.split("</head>")[1]
        assert "&lt;i&gt;Zed&lt;/i&gt;" in live.text and "<i>Zed</i>" not in live.text
        assert '<rect class="bar"' in live.text and attendee["key_id"] in live.text
        polled = client.get(f"/console/admin/events/{event['id']}/live.json")
        assert polled.status_code == 200 and polled.headers["content-type"] == "application/json"
        assert polled.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in polled.headers["content-security-policy"]
        body = polled.json()
        assert body["requests"] == 2 and body["top_attendees"][0]["name"] == "<i>Zed</i>"
        # One summary for everyone watching, for a few seconds: the page says when its figures were taken.
        assert f'figures as of <span data-live="until">{body["until"][11:19]}</span> UTC' in live.text
        assert "at most 5 seconds old" in live.text
        missing = client.get("/console/admin/events/evt_nope/live.json")
        assert missing.status_code == 404 and missing.json()["error"]["param"] == "event_id"
    stranger = httpx.get(f"{gateway.url}/console/admin/events/{event['id']}/live.json")
    assert stranger.status_code == 401 and stranger.headers["content-type"] == "application/json"
    assert set(stranger.json()["error"]) == {"message", "type", "param", "code"}
    api = httpx.get(f"{gateway.url}/admin/events/{event['id']}/live", headers={"authorization": f"Bearer {MASTER}"})
    assert api.json()["requests"] == 2


def test_a_new_time_zone_keeps_the_wall_clock_times(console_gateway: Any) -> None:
    gateway = console_gateway()
    event = make_event(gateway)  # Europe/Berlin
    base = f"/console/admin/events/{event['id']}"
    with signed_in(gateway) as client:
        page = client.get(base)
        assert 'name="timezone" required maxlength="64" value="Europe/Berlin"' in page.text
        form = {
            "csrf": csrf_of(page),
            "name": "Hack Day",
            "starts_at": "2199-01-01T09:00",
            "ends_at": "2199-01-01T18:00",
        }
        assert client.post(base, data=form).status_code == 303
        for zone, message in (("Mars/Olympus", "unknown time zone"), ("", ""), ("Europe/../../etc", "time zone")):
            answer = client.post(base, data={**form, "timezone": zone})
            if message:
                assert answer.status_code == 400 and message in answer.text, answer.text[-500:]
            else:  # an empty zone field leaves the zone alone
                assert answer.status_code == 303
        assert api_event(gateway, event["id"])["timezone"] == "Europe/Berlin"
        moved = client.post(base, data={**form, "timezone": "America/New_York"})
        assert moved.status_code == 303
        after = api_event(gateway, event["id"])
        assert after["timezone"] == "America/New_York"
        assert after["starts_at"] == "2199-01-01T09:00:00-05:00" and after["ends_at"] == "2199-01-01T18:00:00-05:00"
        shown = client.get(base).text
        assert "Starts (America/New_York)" in shown and 'value="2199-01-01T09:00"' in shown
        # Saving again without touching anything changes nothing.
        assert client.post(base, data={**form, "timezone": "America/New_York"}).status_code == 303
        assert api_event(gateway, event["id"]) == after


def test_the_registration_link_as_a_qr_code(console_gateway: Any) -> None:
    gateway = console_gateway()
    event = make_event(gateway)
    with signed_in(gateway) as client:
        page = client.get(f"/console/admin/events/{event['id']}")
        assert f'src="/console/events/{event["id"]}/qr.svg"' in page.text
        assert 'alt="QR code of the registration link (download)"' in page.text
    answer = httpx.get(f"{gateway.url}/console/events/{event['id']}/qr.svg")  # public, like the link itself
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/svg+xml"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.text.startswith("<svg") and "<script" not in answer.text and "Registration link" in answer.text
    # The code holds exactly the link: the same modules segno draws for that text (and not for another one).
    link = f"{gateway.url}/console/events/{event['id']}"
    assert answer.content == _drawn(link) and answer.content != _drawn(link + "x")
    # Another Host gets a code for its own origin, never cached for others.
    other = httpx.get(f"{gateway.url}/console/events/{event['id']}/qr.svg", headers={"host": "evil.example"})
    assert other.content == _drawn(f"http://evil.example/console/events/{event['id']}")
    for bad in ("evt_nope", "evt_1%00", "x" * 300):
        assert httpx.get(f"{gateway.url}/console/events/{bad}/qr.svg").status_code == 404


def _drawn(text: str) -> bytes:
    import segno

    out = io.BytesIO()
    segno.make_qr(text, error="m").save(
        out, kind="svg", scale=8, border=4, xmldecl=False, title="Registration link", dark="#000", light="#fff"
    )
    return out.getvalue()

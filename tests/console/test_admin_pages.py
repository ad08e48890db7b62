"""The admin's keys and usage pages over HTTP: signed in only, CSRF on every post, the API's validation."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from ..keyed import MASTER
from .conftest import csrf_of, make_event


@contextmanager
def signed_in(gateway: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        token = csrf_of(client.get("/console/sign-in"))
        assert client.post("/console/sign-in", data={"csrf": token, "master_key": MASTER}).status_code == 303
        yield client


def chat(gateway: Any, secret: str, model: str = "gpt-4o") -> None:
    answer = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def test_keys_need_a_session(console_gateway: Any) -> None:
    gateway = console_gateway()
    with httpx.Client(base_url=gateway.url, timeout=30) as stranger:
        assert stranger.get("/console/admin/keys").headers["location"] == "/console/sign-in"
        assert stranger.get("/console/admin/usage").headers["location"] == "/console/sign-in"
        assert stranger.get("/console/admin/usage.csv").status_code == 401
        token = csrf_of(stranger.get("/console/sign-in"))
        refused = stranger.post("/console/admin/keys", data={"csrf": token, "name": "sneaky"})
        assert refused.status_code == 401
    assert httpx.get(f"{gateway.url}/admin/keys", headers={"authorization": f"Bearer {MASTER}"}).json()["data"] == []


def test_create_list_and_revoke_a_key(console_gateway: Any) -> None:
    gateway = console_gateway()
    with signed_in(gateway) as client:
        page = client.get("/console/admin/keys")
        token = csrf_of(page)
        assert client.post("/console/admin/keys", data={"name": "no token"}).status_code == 403
        unknown = client.post("/console/admin/keys", data={"csrf": token, "name": "ci", "models": "gpt-4o, gpt-9"})
        assert unknown.status_code == 400 and "serves no gpt-9" in unknown.text
        bad_cap = client.post("/console/admin/keys", data={"csrf": token, "name": "ci", "rpm": "-5"})
        assert bad_cap.status_code == 400 and "rpm" in bad_cap.text
        no_zone = client.post(
            "/console/admin/keys", data={"csrf": token, "name": "ci", "expires_at": "2030-01-01T00:00"}
        )
        assert no_zone.status_code == 400 and "time zone" in no_zone.text
        hostile = "<b>ci</b>"
        made = client.post(
            "/console/admin/keys", data={"csrf": token, "name": hostile, "models": "gpt-4o", "rpm": "60"}
        )
        # POST-redirect-GET: the answer is a redirect, so a reload cannot make a second key.
        assert made.status_code == 303 and made.headers["location"] == "/console/admin/keys"
        assert "sk-gw-" not in made.text
        shown = client.get(made.headers["location"])
        assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
        assert hostile not in shown.text and "&lt;b&gt;ci&lt;/b&gt;" in shown.text
        secret = shown.text.split('id="secret" readonly value="', 1)[1].split('"', 1)[0]
        assert secret.startswith("sk-gw-")
        reloaded = client.get("/console/admin/keys")  # the secret was shown once
        assert secret not in reloaded.text and 'id="secret"' not in reloaded.text
        assert reloaded.headers.get("cache-control") != "no-store"
        # A forged cookie naming another key (or nothing real) shows no secret.
        client.cookies.set("aoai_console_new_key", "key_nope.sk-gw-forged<b>")
        forged = client.get("/console/admin/keys")
        assert forged.status_code == 200 and 'id="secret"' not in forged.text and "forged" not in forged.text
        chat(gateway, secret)
        listing = client.get("/console/admin/keys")
        assert "rpm 60" in listing.text and secret not in listing.text
        keys = httpx.get(f"{gateway.url}/admin/keys", headers={"authorization": f"Bearer {MASTER}"}).json()
        key_id = keys["data"][0]["id"]
        assert client.post(f"/console/admin/keys/{key_id}/revoke", data={}).status_code == 403
        revoked = client.post(f"/console/admin/keys/{key_id}/revoke", data={"csrf": token})
        assert revoked.status_code == 303
        assert "revoked" in client.get("/console/admin/keys").text
        assert client.post("/console/admin/keys/key_nope/revoke", data={"csrf": token}).status_code == 404
        assert client.get("/console/admin/keys?offset=-1").status_code == 400
        answer = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {secret}"},
        )
        assert answer.status_code == 401


def test_usage_report_chart_and_csv(console_gateway: Any) -> None:
    gateway = console_gateway()
    admin = {"authorization": f"Bearer {MASTER}"}
    secret = httpx.post(f"{gateway.url}/admin/keys", json={"name": "=cmd|' /C calc'!A0"}, headers=admin).json()
    for _ in range(3):
        chat(gateway, secret["secret"])
    with signed_in(gateway) as client:
        deadline = time.monotonic() + 60
        while True:  # the ledger is written off the request path; the page flushes it, so this is one round
            page = client.get("/console/admin/usage?by=key&since=1h")
            if secret["id"] in page.text or time.monotonic() > deadline:
                break
        assert page.status_code == 200 and "<svg" in page.text and secret["id"] in page.text
        assert '<rect class="bar"' in page.text
        by_model = client.get("/console/admin/usage?by=model")
        assert ">gpt-4o<" in by_model.text
        exported = client.get("/console/admin/usage.csv?by=key")
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(exported.text)))
        assert rows[0][:2] == ["key", "requests"] and rows[1][:2] == [secret["id"], "3"]
        for query in ("by=nope", "since=yesterday", "event=<script>", "since=99999999d"):
            refused = client.get(f"/console/admin/usage?{query}")
            assert refused.status_code == 400, query
            assert "<script>" not in refused.text


def test_an_organiser_creates_an_event_and_revokes_an_attendee(console_gateway: Any) -> None:
    gateway = console_gateway()
    with signed_in(gateway) as client:
        token = csrf_of(client.get("/console/admin"))
        form = {
            "csrf": token,
            "name": "Hack <Night>",
            "timezone": "Asia/Tokyo",
            "starts_at": "2020-01-01T09:00",
            "ends_at": "2199-01-01T18:00",
            "models": "gpt-4o",
            "daily_requests": "20",
            "generate_code": "on",
        }
        for change, message in (
            ({"timezone": "Mars/Olympus"}, "unknown time zone"),
            ({"ends_at": "2019-01-01T09:00"}, "ends_at must be after starts_at"),
            ({"models": "gpt-9"}, "serves no gpt-9"),
            ({"generate_code": "", "shared_code": "short"}, "at least 8 characters"),
            ({"max_attendees": "0"}, "max_attendees"),
        ):
            refused = client.post("/console/admin/events", data={**form, **change})
            assert refused.status_code == 400 and message in refused.text, (change, refused.text[-800:])
        assert (
            client.post("/console/admin/events", data={k: v for k, v in form.items() if k != "csrf"}).status_code == 403
        )
        made = client.post("/console/admin/events", data=form)
        assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
        assert "Hack &lt;Night&gt;" in made.text and "(Asia/Tokyo)" in made.text
        code = made.text.split('id="secret" readonly value="', 1)[1].split('"', 1)[0]
        event_id = made.text.split("/console/events/", 1)[1].split('"', 1)[0]
        link = httpx.get(f"{gateway.url}/console/events/{event_id}")
        assert "Hack &lt;Night&gt;" in link.text
        for name in ("Ann", "Bo"):
            registered = httpx.post(f"{gateway.url}/events/{event_id}/register", json={"name": name, "code": code})
            assert registered.status_code == 201, registered.text
        secret = registered.json()["key"]
        chat(gateway, secret)
        page = client.get(f"/console/admin/events/{event_id}")
        assert page.status_code == 200 and "Ann" in page.text and "Bo" in page.text and code not in page.text
        found = client.get(f"/console/admin/events/{event_id}?q=bo")
        assert "Bo" in found.text and ">Ann<" not in found.text
        bo = registered.json()["key_id"]
        assert client.post(f"/console/admin/events/{event_id}/attendees/{bo}/revoke", data={}).status_code == 403
        gone = client.post(f"/console/admin/events/{event_id}/attendees/{bo}/revoke", data={"csrf": token})
        assert gone.status_code == 303
        assert "revoked" in client.get(f"/console/admin/events/{event_id}?q=bo").text
        other = client.post(f"/console/admin/events/evt_nope/attendees/{bo}/revoke", data={"csrf": token})
        assert other.status_code == 404
        answer = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {secret}"},
        )
        assert answer.status_code == 401


def test_deployments_show_their_live_state(console_gateway: Any) -> None:
    gateway = console_gateway()
    secret = httpx.post(f"{gateway.url}/admin/keys", json={"name": "d"}, headers={"authorization": f"Bearer {MASTER}"})
    chat(gateway, secret.json()["secret"])
    assert httpx.get(f"{gateway.url}/console/admin/deployments").headers["location"] == "/console/sign-in"
    with signed_in(gateway) as client:
        page = client.get("/console/admin/deployments")
        assert page.status_code == 200
        row = page.text.split(">gpt-4o<", 1)[1].split("</tr>", 1)[0]
        assert "slow-stream" in row and "healthy" in row and "ok 1" in row
        assert "whisper-1" in page.text and "tts-1" in page.text


def test_without_keys_mode_the_pages_say_what_is_missing(console_gateway: Any) -> None:
    gateway = console_gateway(auth="passthrough")
    with signed_in(gateway) as client:
        home = client.get("/console/admin")
        assert home.status_code == 200 and "need <code>auth: keys</code>" in home.text
        for path in ("/console/admin/keys", "/console/admin/usage", "/console/usage", "/console/events/evt_1"):
            page = client.get(path)
            assert page.status_code == 404 and "auth: keys" in page.text, path
        playground = client.get("/console/playground")
        assert playground.status_code == 200 and "Use a key for my admin session" not in playground.text
        assert client.get("/console/admin/deployments").status_code == 200
        assert "No usage" not in client.get("/console").text
    keyed = console_gateway()
    with signed_in(keyed) as client:
        empty = client.get("/console/admin/usage?since=1h&event=evt_none")
        assert empty.status_code == 200 and "No usage matches these filters" in empty.text
        assert "No events yet" in client.get("/console/admin").text


def test_keys_and_events_come_a_page_at_a_time(console_gateway: Any) -> None:
    gateway = console_gateway()
    admin = {"authorization": f"Bearer {MASTER}"}
    with httpx.Client(base_url=gateway.url, headers=admin, timeout=30) as api:
        for n in range(120):
            assert api.post("/admin/keys", json={"name": f"key-{n:03d}"}).status_code == 201
    for n in range(55):
        make_event(gateway, name=f"event-{n:02d}")
    with signed_in(gateway) as client:
        first = client.get("/console/admin/keys")
        assert "120 keys" in first.text
        shown = list(dict.fromkeys(re.findall(r"key-(\d{3})", first.text)))  # a row names its key twice
        assert shown == [f"{n:03d}" for n in range(119, 69, -1)]  # the newest fifty, newest first
        assert "offset=50" in first.text and "Newer" not in first.text
        last = client.get("/console/admin/keys?offset=100")
        assert list(dict.fromkeys(re.findall(r"key-(\d{3})", last.text))) == [f"{n:03d}" for n in range(19, -1, -1)]
        assert "Older" not in last.text and "offset=50" in last.text
        assert client.get("/console/admin/keys?offset=1e9").status_code == 400
        home = client.get("/console/admin")
        assert len(set(re.findall(r"event-(\d\d)", home.text))) == 50 and "offset=50" in home.text
        later = client.get("/console/admin?offset=50")
        assert len(set(re.findall(r"event-(\d\d)", later.text))) == 5 and "Later" not in later.text
        assert client.get("/console/admin?offset=-1").status_code == 400

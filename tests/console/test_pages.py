"""The console over HTTP: security headers, CSRF, escaping, registration's rules, sign-in, its settings."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from aoai_gateway.config import Settings

from ..keyed import MASTER
from .conftest import csrf_of, make_event


def browser(gateway: Any) -> httpx.Client:
    """A client that keeps cookies, as a browser does."""
    return httpx.Client(base_url=gateway.url, timeout=30)


def register(client: httpx.Client, event_id: str, **fields: str) -> httpx.Response:
    page = client.get(f"/console/events/{event_id}")
    assert page.status_code == 200, page.text
    return client.post(f"/console/events/{event_id}/register", data={"csrf": csrf_of(page), **fields})


def test_pages_carry_a_strict_policy(console_gateway: Any) -> None:
    gateway = console_gateway()
    with browser(gateway) as client:
        for path in ("/console", "/console/playground", "/console/usage", "/console/sign-in"):
            page = client.get(path)
            assert page.status_code == 200, path
            policy = page.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
            assert "'unsafe-inline'" not in policy and page.headers["x-frame-options"] == "DENY"
            assert "<script>" not in page.text and " style=" not in page.text and " onclick" not in page.text
        cookie = httpx.get(f"{gateway.url}/console").headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
        asset = client.get("/console/static/console.css")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/css")
        assert client.get("/console/static/..%2Fpages.py").status_code == 404
        assert client.get("/console/static/nothing.js").status_code == 404


def test_console_is_off_without_a_master_key_unless_asked(console_gateway: Any) -> None:
    off = console_gateway(admin={})
    assert httpx.get(f"{off.url}/console").status_code == 404
    on = console_gateway(admin={}, console={"enabled": True, "prefix": "/portal/"})
    page = httpx.get(f"{on.url}/portal/sign-in")
    assert page.status_code == 200 and "Admin sign-in is off" in page.text


def test_prefix_must_not_shadow_the_api() -> None:
    for prefix in ("/v1", "/v1/console", "/admin", "/openai/x", "/", "/a b", "/../x"):
        with pytest.raises(ValidationError):
            Settings.model_validate({"console": {"prefix": prefix}})
    assert Settings.model_validate({"console": {"prefix": "ui/"}}).console.prefix == "/ui"


def test_register_shows_the_key_once_and_keeps_the_api_rules(console_gateway: Any) -> None:
    gateway = console_gateway()
    event = make_event(gateway, shared_code="open-sesame", timezone="Asia/Tokyo")
    with browser(gateway) as client:
        landing = client.get(f"/console/events/{event['id']}")
        assert "Hack Day" in landing.text and "(Asia/Tokyo)" in landing.text and "shared code" in landing.text
        assert "whisper-1" in landing.text
        wrong = register(client, event["id"], name="Ann", code="not-the-code")
        assert wrong.status_code == 403 and "needs its shared code" in wrong.text
        assert "not-the-code" not in wrong.text  # a code typed is never echoed
        done = register(client, event["id"], name="Ann", code="open-sesame")
        assert done.status_code == 200 and done.headers["cache-control"] == "no-store"
        secret = done.text.split('data-gateway-key="', 1)[1].split('"', 1)[0]
        assert secret.startswith("sk-gw-")
        assert f"{gateway.url}/v1" in done.text and "from langchain_openai import ChatOpenAI" in done.text
        again = register(client, event["id"], name="ann ", code="open-sesame")
        assert again.status_code == 409 and "already registered" in again.text
    answer = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def test_a_hostile_name_stays_text(console_gateway: Any) -> None:
    gateway = console_gateway()
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    event = make_event(gateway, name=hostile)
    with browser(gateway) as client:
        landing = client.get(f"/console/events/{event['id']}")
        assert hostile not in landing.text and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img" in landing.text
        done = register(client, event["id"], name=hostile)
        assert done.status_code == 200 and hostile not in done.text and "<img" not in done.text
        for bad in ("<script>x", "%00", "x" * 5000):
            missing = client.get(f"/console/events/{bad}")
            assert missing.status_code == 404 and "<script>x" not in missing.text


def test_a_post_without_its_csrf_token_is_refused(console_gateway: Any) -> None:
    gateway = console_gateway()
    event = make_event(gateway)
    url = f"/console/events/{event['id']}/register"
    with browser(gateway) as client:
        token = csrf_of(client.get(f"/console/events/{event['id']}"))
        assert client.post(url, data={"name": "Bo"}).status_code == 403
        assert client.post(url, data={"name": "Bo", "csrf": token + "x"}).status_code == 403
        assert client.post("/console/sign-in", data={"master_key": MASTER}).status_code == 403
        json_post = client.post(url, json={"name": "Bo", "csrf": token})
        assert json_post.status_code == 415
    # Another browser's token (the attacker's own) does not fit the victim's cookie.
    with browser(gateway) as victim:
        victim.get("/console")
        refused = victim.post(url, data={"name": "Bo", "csrf": token})
        assert refused.status_code == 403 and "did not come from this site" in refused.text
    with browser(gateway) as fresh:  # no cookie at all
        assert fresh.post(url, data={"name": "Bo", "csrf": token}).status_code == 403
    attendees = httpx.get(
        f"{gateway.url}/admin/events/{event['id']}/attendees", headers={"authorization": f"Bearer {MASTER}"}
    )
    assert attendees.json()["data"] == []


def test_oversized_or_garbled_forms_are_refused(console_gateway: Any) -> None:
    gateway = console_gateway()
    event = make_event(gateway)
    url = f"/console/events/{event['id']}/register"
    with browser(gateway) as client:
        token = csrf_of(client.get(f"/console/events/{event['id']}"))
        big = client.post(url, data={"name": "x" * 100_000, "csrf": token})
        assert big.status_code == 413
        long_name = client.post(url, data={"name": "x" * 300, "csrf": token})
        assert long_name.status_code == 400 and "name" in long_name.text
        garbled = client.post(
            url,
            content=b"name=\xff\xfe&csrf=" + token.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert garbled.status_code == 400
        many = client.post(
            url,
            content="&".join(f"f{i}=1" for i in range(100)).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert many.status_code == 400


def test_sign_in_sign_out_and_throttle(console_gateway: Any) -> None:
    gateway = console_gateway(console={"sign_in_attempts": 3})
    with browser(gateway) as client:
        assert client.get("/console/admin").headers["location"] == "/console/sign-in"
        token = csrf_of(client.get("/console/sign-in"))
        wrong = client.post("/console/sign-in", data={"csrf": token, "master_key": "guess"})
        assert wrong.status_code == 401
        right = client.post("/console/sign-in", data={"csrf": token, "master_key": MASTER})
        assert right.status_code == 303 and right.headers["location"] == "/console/admin"
        cookie = next(c for c in right.headers.get_list("set-cookie") if c.startswith("aoai_console_session="))
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=28800" in cookie
        home = client.get("/console/admin")
        assert home.status_code == 200 and "Sign out" in home.text
        playground = client.post("/console/playground/key", data={"csrf": csrf_of(home)})
        assert playground.status_code == 200 and playground.headers["cache-control"] == "no-store"
        session_key = playground.text.split('data-gateway-key="', 1)[1].split('"', 1)[0]
        listing = httpx.get(f"{gateway.url}/admin/keys", headers={"authorization": f"Bearer {MASTER}"}).json()
        assert [k["name"] for k in listing["data"]] == ["console playground (admin session)"]
        assert listing["data"][0]["expires_at"] is not None and session_key.startswith("sk-gw-")
        out = client.post("/console/sign-out", data={"csrf": csrf_of(home)})
        assert out.status_code == 303
        assert client.get("/console/admin").status_code == 303
        # A stolen session cookie after sign-out is worth nothing either.
        session = cookie.split(";", 1)[0].split("=", 1)[1]
    with browser(gateway) as thief:
        thief.cookies.set("aoai_console_session", session, path="/console")
        assert thief.get("/console/admin").status_code == 303
        token = csrf_of(thief.get("/console/usage"))
        assert thief.post("/console/playground/key", data={"csrf": token}).status_code == 401
    with browser(gateway) as attacker:
        token = csrf_of(attacker.get("/console/sign-in"))
        answers = [
            attacker.post("/console/sign-in", data={"csrf": token, "master_key": f"guess{i}"}).status_code
            for i in range(4)
        ]
        assert answers == [401, 401, 429, 429]  # one wrong try was counted above, from the same address
        last = attacker.post("/console/sign-in", data={"csrf": token, "master_key": MASTER})
        assert last.status_code == 429 and int(last.headers["retry-after"]) > 0  # even the right key waits


def test_my_usage_shows_what_remains(console_gateway: Any) -> None:
    gateway = console_gateway()
    event = make_event(gateway, daily_requests=5)
    with browser(gateway) as client:
        done = register(client, event["id"], email="cy@example.com")
        secret = done.text.split('data-gateway-key="', 1)[1].split('"', 1)[0]
        for _ in range(2):
            httpx.post(
                f"{gateway.url}/v1/chat/completions",
                json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {secret}"},
                timeout=30,
            )
        token = csrf_of(client.get("/console/usage"))
        deadline = time.monotonic() + 60  # the two requests reach the usage ledger with its next batch
        while True:
            page = client.post("/console/usage", data={"csrf": token, "key": secret})
            assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
            assert secret not in page.text
            row = page.text.split("Requests today", 1)[1].split("</tr>", 1)[0]
            cells = [cell for cell in row.replace("</td>", "").split("<td>")[1:]]
            if (cells != ["5", "0", "5"] and cells != ["5", "1", "4"]) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert cells == ["5", "2", "3"]
        unknown = client.post("/console/usage", data={"csrf": token, "key": "sk-gw-nope"})
        assert unknown.status_code == 401 and "No key matches" in unknown.text

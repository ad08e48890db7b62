"""The console's page process (`console.process`): read-only pages rendered by a nice-19 child of the gateway.

Real processes throughout: the gateway serves on a socket, starts `python -m aoai_gateway.console.worker` on the
first read-only page, and relays to it over loopback. The tests find the child among this process's children.
"""

from __future__ import annotations

import os
import pickle
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from aoai_gateway.config import Settings
from aoai_gateway.console.relay import RELAY_HEADER
from aoai_gateway.store.keys import SECRET_PREFIX

from ..keyed import MASTER
from .conftest import csrf_of, make_event
from .test_admin_pages import chat, signed_in

PATIENCE = 120.0  # generous bounds for a busy machine: nothing here waits on a fixed short deadline


def page_processes() -> list[int]:
    """Pids of live page processes started by this test process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parent, state = int(fields[1]), fields[0]
        if parent == os.getpid() and state != "Z" and b"aoai_gateway.console.worker" in cmdline:
            found.append(int(entry.name))
    return found


def nice_of(pid: int) -> int:
    return int((Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split())[16])


def wait_for(check: Any, what: str) -> Any:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {PATIENCE:g} s: {what}")


def test_read_only_pages_come_from_a_nice_19_child_and_match_the_in_process_pages(console_gateway: Any) -> None:
    before = set(page_processes())
    relayed = console_gateway()
    in_process = console_gateway(console={"process": False})
    event = make_event(relayed, name="Relay <b>Day</b>")
    assert set(page_processes()) == before  # nothing starts until a read-only page is asked for
    with signed_in(relayed) as client:
        keys = client.get("/console/admin/keys")
        assert keys.status_code == 200, keys.text
        token = csrf_of(keys)
        made = client.post("/console/admin/keys", data={"csrf": token, "name": "relay-key"})
        assert made.status_code == 303  # a write: answered by the gateway itself
        made = client.get("/console/admin/keys")  # the secret shown once, by the child, from the gateway's cookie
        secret = re.search(SECRET_PREFIX + r"[A-Za-z0-9_-]+", made.text)[0]  # type: ignore[index]
        chat(relayed, secret)
        children = set(page_processes()) - before
        assert len(children) == 1, children
        (child,) = children
        assert nice_of(child) == 19 and os.sched_getscheduler(child) == os.SCHED_BATCH
        pages = {
            "/console/admin": "Relay &lt;b&gt;Day&lt;/b&gt;",
            "/console/admin/keys": "relay-key",
            f"/console/admin/events/{event['id']}": "Relay &lt;b&gt;Day&lt;/b&gt;",
            f"/console/admin/events/{event['id']}/live": "Relay &lt;b&gt;Day&lt;/b&gt;",
            "/console/admin/usage?by=model": "gpt-4o",
        }
        for path, shown in pages.items():
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text)
            assert shown in answer.text, path
            assert "<b>Day" not in answer.text
            assert answer.headers["content-security-policy"].startswith("default-src")
            assert "x-gateway-request-id" in answer.headers  # the gateway's own answer, relayed
            # Forms on a relayed page post to the gateway: their CSRF token is the one the gateway checks.
        token = csrf_of(client.get(f"/console/admin/events/{event['id']}"))
        extended = client.post(f"/console/admin/events/{event['id']}/extend", data={"csrf": token, "by": "1h"})
        assert extended.status_code == 303, extended.text
        csv = client.get("/console/admin/usage.csv?by=key")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert re.search(r"^key_\w+,1,0,", csv.text, re.M), csv.text  # the chat above, counted
        live = client.get(f"/console/admin/events/{event['id']}/live.json")
        assert live.status_code == 200 and live.headers["content-type"].startswith("application/json")
    # The same pages rendered in-process read the same: compare the usage CSV of the other gateway's database
    # after the same steps would need the same data; instead compare a page's shape with no data of its own.
    with signed_in(in_process) as client:
        assert client.get("/console/admin/usage?by=model").status_code == 200
    assert set(page_processes()) - before == children  # the in-process gateway started no child


def test_a_stranger_gets_the_sign_in_redirect_and_forged_relay_headers_change_nothing(console_gateway: Any) -> None:
    gateway = console_gateway()
    forged = {
        RELAY_HEADER: "guess",
        "x-forwarded-for": "203.0.113.9",
        "x-forwarded-host": "evil.example",
        "x-forwarded-proto": "https",
    }
    with httpx.Client(base_url=gateway.url, timeout=60) as stranger:
        answer = stranger.get("/console/admin/usage", headers=forged)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"
        assert stranger.get("/console/admin/usage.csv", headers=forged).status_code == 401
        # The CSRF cookie a relayed page sets is not Secure: the browser's own scheme (http) was used, not the
        # forged header's.
        assert "secure" not in answer.headers.get("set-cookie", "").lower()


def test_the_child_refuses_requests_without_the_secret(console_gateway: Any) -> None:
    gateway = console_gateway()
    with signed_in(gateway) as client:
        assert client.get("/console/admin").status_code == 200
    (child,) = page_processes()
    port = listening_port(child)
    direct = httpx.get(f"http://127.0.0.1:{port}/console/admin", headers={RELAY_HEADER: "guess"}, timeout=30)
    assert direct.status_code == 403
    error = direct.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert httpx.get(f"http://127.0.0.1:{port}/console/admin/usage.csv", timeout=30).status_code == 403


def listening_port(pid: int) -> int:
    """The loopback port `pid` listens on (from /proc/net/tcp and the process's socket inodes)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[3] == "0A" and parts[9] in inodes:  # LISTEN
            return int(parts[1].split(":")[1], 16)
    raise AssertionError(f"pid {pid} listens on no TCP port")


def test_a_killed_child_is_started_again_and_pages_come_back(console_gateway: Any) -> None:
    gateway = console_gateway()
    with signed_in(gateway) as client:
        assert client.get("/console/admin/keys").status_code == 200
        (first,) = page_processes()
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: first not in page_processes(), "the killed child gone")

        def served() -> bool:
            answer = client.get("/console/admin/keys")
            # While it restarts: a 503 page that says so, with Retry-After; never a 500.
            assert answer.status_code in (200, 503), answer.text
            if answer.status_code == 503:
                assert "retry-after" in answer.headers and answer.headers["content-type"].startswith("text/html")
            return answer.status_code == 200

        wait_for(served, "pages served by a new child")
        (second,) = page_processes()
        assert second != first and nice_of(second) == 19 and os.sched_getscheduler(second) == os.SCHED_BATCH


def test_stopping_the_gateway_stops_the_child(tmp_path: Path, emulator_server: Any) -> None:
    from aoai_gateway.app import create_app

    from ..conftest import EMULATOR_KEY
    from ..servers import AsgiServer

    deployment = {"model": "gpt-4o", "deployment": "chat", "endpoint": emulator_server.url, "api_key": EMULATOR_KEY}
    settings = Settings.model_validate(
        {"auth": "keys", "data_dir": str(tmp_path), "admin": {"master_key": MASTER}, "deployments": [deployment]}
    )
    before = set(page_processes())
    with AsgiServer(create_app(settings), settings.server) as gateway:
        with signed_in(gateway) as client:
            assert client.get("/console/admin").status_code == 200
        children = set(page_processes()) - before
        assert len(children) == 1
    wait_for(lambda: not (set(page_processes()) & children), "the child ended with the gateway")


def test_the_child_ends_when_its_stdin_closes(tmp_path: Path) -> None:
    """A gateway killed outright cannot stop its child; the child sees its stdin end and stops by itself."""
    settings = Settings.model_validate(
        {"auth": "keys", "data_dir": str(tmp_path), "admin": {"master_key": MASTER}, "deployments": []}
    )
    argv = [sys.executable, "-m", "aoai_gateway.console.worker"]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as child:
        assert child.stdin is not None and child.stdout is not None
        payload = pickle.dumps((settings, "s3cret"))
        child.stdin.write(struct.pack("!I", len(payload)) + payload)
        child.stdin.flush()
        port = int(child.stdout.readline())
        answer = httpx.get(f"http://127.0.0.1:{port}/console/admin", headers={RELAY_HEADER: "s3cret"}, timeout=30)
        assert answer.status_code == 303  # served (a sign-in redirect: no session)
        child.stdin.close()
        assert child.wait(timeout=PATIENCE) == 0


@pytest.mark.parametrize("payload", [b"", b"\x00\x00\x00\x10short", b"\x00\x00\x00\x04junk"])
def test_the_child_refuses_a_broken_start(payload: bytes) -> None:
    child = subprocess.run(
        [sys.executable, "-m", "aoai_gateway.console.worker"], input=payload, capture_output=True, timeout=PATIENCE
    )
    assert child.returncode != 0 and child.stdout == b""
    assert b"Traceback" not in child.stderr, child.stderr


def test_a_child_that_cannot_start_is_a_503_page_and_the_proxy_goes_on(
    console_gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aoai_gateway.console import relay

    monkeypatch.setattr(relay, "COMMAND", (sys.executable, "-c", "raise SystemExit(3)"))  # ends at once, no port
    monkeypatch.setattr(relay, "_FIRST_START_WAIT", 1.0)
    gateway = console_gateway()
    secret = httpx.post(
        f"{gateway.url}/admin/keys", json={"name": "ci"}, headers={"authorization": f"Bearer {MASTER}"}
    ).json()["secret"]
    with signed_in(gateway) as client:
        for path in ("/console/admin/usage", "/console/admin/usage.csv", "/console/admin"):
            answer = client.get(path)
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith("text/html")
            assert "page process" in answer.text and answer.headers["retry-after"]
        # What the gateway answers itself still works: a write, the deployments page, and the proxy.
        assert client.get("/console/admin/deployments").status_code == 200
    chat(gateway, secret)


@pytest.mark.parametrize(
    "target",
    [
        b"/console/admin/calls/%2e%2e%2f%2e%2e%2fetc%2fpasswd/audio",
        b"/console/admin/calls/..%2F..%2Fsecret",
        b"/console/admin/usage?by=%0d%0aX-Injected:%201",
        b"/console/admin/usage?by=key&by=model&offset=-1",
        b"/console/admin/events/%00/live.json",
        b"/console/admin/keys?offset=99999999999999999999999",
        b"/console/admin/usage.csv?since=%ff%fe",
    ],
)
def test_hostile_targets_through_the_relay_answer_as_in_process(console_gateway: Any, target: bytes) -> None:
    """Raw request lines a client would normalise: the relayed answer is the in-process one, never a 5xx, and no
    header the request smuggled comes back."""
    from ..attacks.raw import raw_request

    relayed, local = console_gateway(), console_gateway(console={"process": False})
    answers = []
    for gateway in (relayed, local):
        with signed_in(gateway) as client:
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        status, headers, body = raw_request(gateway.port, b"GET " + target + b" HTTP/1.1", {"Cookie": cookie})
        assert status < 500, (gateway, status, body[:300])
        assert "x-injected" not in headers
        answers.append(status)
    assert answers[0] == answers[1]


def test_a_relayed_report_holds_the_requests_the_gateway_still_buffers(console_gateway: Any) -> None:
    """The ledger writes once an hour here: only the relay's flush before forwarding can make the chat visible."""
    gateway = console_gateway(access={"usage_flush_seconds": 3600})
    secret = httpx.post(
        f"{gateway.url}/admin/keys", json={"name": "buffered"}, headers={"authorization": f"Bearer {MASTER}"}
    ).json()["secret"]
    with signed_in(gateway) as client:
        assert "No usage yet" in client.get("/console/admin/usage?by=model").text
        chat(gateway, secret)
        report = client.get("/console/admin/usage?by=model")
        assert report.status_code == 200 and "gpt-4o" in report.text
        assert re.search(r"^key_\w+,1,0,", client.get("/console/admin/usage.csv?by=key").text, re.M)

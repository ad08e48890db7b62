"""The console in a real browser: Debian's Chromium driven by Playwright, on a phone-sized screen first.

Chromium is never downloaded: Playwright launches /usr/bin/chromium (`apt-get install chromium`, done by
scripts/test). Without it, or without the `playwright` package, these tests skip saying so, and fail under
AOAI_GATEWAY_REQUIRE_SERVICES=1. axe-core (tests/console/node, installed by scripts/test) checks each main page.
Screenshots go to $AOAI_GATEWAY_SCREENSHOTS when set (docs/screenshots/ in the README), else to a temporary folder.
"""

from __future__ import annotations

import io
import os
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from ..keyed import MASTER, fresh_minute
from ..services import unavailable
from .conftest import make_event, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path(os.environ.get("AOAI_TEST_CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).parent / "node" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install '.[test]')")
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        # A fake microphone (a tone) that needs no prompt: the playground's recording can be tested.
        fake_media = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=fake_media)
        yield launched
        launched.close()


@pytest.fixture
def phone(browser: Browser, console_gateway: Any) -> Iterator[tuple[Page, Any]]:
    gateway = console_gateway()
    context = browser.new_context(**PHONE, permissions=["clipboard-read", "clipboard-write", "microphone"])
    page = context.new_page()
    page.set_default_timeout(60_000)  # a bound on a hang on a busy machine, not an expectation
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield page, gateway
    context.close()
    assert dialogs == [], f"a page opened a dialog: {dialogs}"  # no injected script ever ran


def check_accessibility(page: Page) -> None:
    """axe-core in the page: no serious or critical violation."""
    if not AXE.exists():
        unavailable(f"axe-core is not installed at {AXE} (npm ci --prefix tests/console/node)")
    page.evaluate(AXE.read_text())  # evaluated by the browser's debugger: the page's CSP rightly blocks inline
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{page.url}: {bad}"


def wav(seconds: float = 0.5) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(16000)
        audio.writeframes(b"\x00\x00" * int(16000 * seconds))
    return out.getvalue()


def register(page: Page, gateway: Any, event: dict[str, Any], name: str, code: str | None = None) -> str:
    response = page.goto(f"{gateway.url}/console/events/{event['id']}")
    assert response is not None and response.status == 200
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page.get_by_label("Your name").fill(name)
    if code is not None:
        page.get_by_label("Shared code").fill(code)
    page.get_by_role("button", name="Register").click()
    page.wait_for_selector("#secret")
    return page.input_value("#secret")


def test_an_attendee_registers_copies_the_key_and_uses_the_playground(phone: tuple[Page, Any], shots: Path) -> None:
    page, gateway = phone
    event = make_event(gateway, name="Hack Day Berlin", shared_code="open-sesame")
    page.goto(f"{gateway.url}/console/events/{event['id']}")
    assert page.get_by_role("heading", level=1).inner_text() == "Hack Day Berlin"
    assert "(Europe/Berlin)" in page.inner_text(".facts")
    check_accessibility(page)
    page.screenshot(path=str(shots / "event.png"), full_page=True)

    secret = register(page, gateway, event, "Ann", code="open-sesame")
    assert secret.startswith("sk-gw-")
    page.get_by_role("button", name="Copy").first.click()
    page.wait_for_selector("[data-copied-for=secret]:has-text('Copied.')")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert f"{gateway.url}/v1" in page.inner_text("#snippet-python")
    check_accessibility(page)
    page.screenshot(path=str(shots / "registered.png"), full_page=True)

    page.get_by_role("link", name="Open the playground").click()
    page.wait_for_selector("#playground[data-ready=true]")  # the key came along; the key's models are listed
    assert page.input_value("#pg-key") == secret
    models = page.eval_on_selector_all("#pg-model option", "options => options.map(o => o.value)")
    assert models == ["gpt-4o"]
    # Every change of the answer's text, recorded as it happens.
    page.evaluate(
        """() => {
            window.seen = [];
            new MutationObserver(() => {
                const reply = document.querySelector('.message.assistant .content');
                if (reply) window.seen.push(reply.textContent);
            }).observe(document.getElementById('pg-messages'), {subtree: true, childList: true, characterData: true});
        }"""
    )
    page.get_by_label("Message").fill("Tell me how a gateway in front of Azure OpenAI shares keys, caps and models")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector(".message.assistant[data-streaming=false]")
    final = page.inner_text(".message.assistant .content")
    partial = {text for text in page.evaluate("window.seen") if text and text != final}
    assert final and len(partial) >= 2, (final, partial)  # the text grew in steps before it was complete

    page.set_input_files("#pg-audio", files=[{"name": "hello.wav", "mimeType": "audio/wav", "buffer": wav()}])
    page.get_by_role("button", name="Transcribe").click()
    page.wait_for_selector("#pg-transcript:has-text('hello.wav')")
    # Recorded from the (fake) microphone instead: start, stop, transcribe.
    page.get_by_role("button", name="Record").click()
    page.wait_for_selector("#pg-recorded:has-text('Recording')")
    page.wait_for_timeout(300)  # some audio: the length does not matter, only that a stop follows a start
    page.get_by_role("button", name="Stop").click()
    page.wait_for_selector("#pg-recorded:has-text('Recorded')")
    page.get_by_role("button", name="Transcribe").click()
    page.wait_for_selector("#pg-transcript:has-text('recording.')")
    page.get_by_role("button", name="Speak").click()
    page.wait_for_selector("#playground[data-spoken=true]")
    assert page.evaluate("document.getElementById('pg-audio-out').src").startswith("blob:")
    check_accessibility(page)
    page.screenshot(path=str(shots / "playground.png"), full_page=True)

    page.goto(f"{gateway.url}/console/usage")
    page.get_by_label("Your key").fill(secret)
    page.get_by_role("button", name="Show my usage").click()
    page.wait_for_selector("#report-title")
    assert "Requests today" in page.inner_text("table")
    check_accessibility(page)
    page.screenshot(path=str(shots / "usage.png"), full_page=True)


def test_the_playground_explains_a_refusal(phone: tuple[Page, Any]) -> None:
    page, gateway = phone
    admin = {"authorization": f"Bearer {MASTER}"}
    made = httpx.post(f"{gateway.url}/admin/keys", json={"name": "one a minute", "rpm": 1}, headers=admin).json()
    page.goto(f"{gateway.url}/console/playground")
    page.get_by_label("Your key").fill(made["secret"])
    page.get_by_role("button", name="Use key").click()
    page.wait_for_selector("#playground[data-ready=true]")
    fresh_minute()  # both requests in one minute's window
    page.get_by_label("Message").fill("hello")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector(".message.assistant[data-streaming=false], #pg-status:not([hidden])")
    assert page.locator("#pg-status").is_hidden(), page.inner_text("#pg-status")
    page.get_by_label("Message").fill("hello again")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector("#pg-status:not([hidden])")
    status = page.inner_text("#pg-status")
    assert status.startswith("Slow down (429): Rate limit reached") and "Try again in" in status, status
    assert page.locator(".message.assistant").count() == 1  # the refused turn left no empty answer behind
    # Revoked by the organiser: the next request says so.
    httpx.delete(f"{gateway.url}/admin/keys/{made['id']}", headers=admin)
    page.get_by_role("button", name="Use key").click()
    page.wait_for_selector("#pg-status:has-text('Key refused (401)')")
    assert made["secret"] not in page.inner_text("#pg-status")


def test_a_hostile_name_is_shown_as_text(phone: tuple[Page, Any]) -> None:
    page, gateway = phone
    hostile = '<script>alert("owned")</script><img src=x onerror=alert(1)>'
    event = make_event(gateway, name=hostile)
    page.goto(f"{gateway.url}/console/events/{event['id']}")
    assert page.get_by_role("heading", level=1).inner_text() == hostile
    assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
    register(page, gateway, event, hostile)
    assert hostile in page.get_by_role("heading", level=1).inner_text()
    # (the phone fixture fails the test if any alert() ran)


def test_a_form_post_without_its_csrf_token_is_refused(phone: tuple[Page, Any]) -> None:
    page, gateway = phone
    event = make_event(gateway)
    page.goto(f"{gateway.url}/console/events/{event['id']}")
    page.evaluate("document.querySelector('input[name=csrf]').remove()")
    page.get_by_label("Your name").fill("Cy")
    with page.expect_response(lambda r: r.url.endswith("/register")) as answer:
        page.get_by_role("button", name="Register").click()
    assert answer.value.status == 403
    assert "did not come from this site" in page.inner_text("[role=alert]")
    attendees = httpx.get(
        f"{gateway.url}/admin/events/{event['id']}/attendees", headers={"authorization": f"Bearer {MASTER}"}
    )
    assert attendees.json()["data"] == []


def test_an_admin_signs_in_and_out(phone: tuple[Page, Any], shots: Path) -> None:
    page, gateway = phone
    make_event(gateway, name="Workshop")
    page.goto(f"{gateway.url}/console/admin")
    assert page.url.endswith("/console/sign-in")
    check_accessibility(page)
    page.get_by_label("Master key").fill(MASTER)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("text=Registration link")
    assert "Workshop" in page.inner_text("table")
    check_accessibility(page)
    page.screenshot(path=str(shots / "admin.png"), full_page=True)
    # An organiser creates an event with a generated code, then sees its page.
    page.get_by_text("Create an event").click()
    page.get_by_label("Name", exact=True).fill("Evening hackathon")
    page.get_by_label("Time zone (IANA, e.g. Europe/Berlin)").fill("Europe/Berlin")
    page.get_by_label("Starts (in that zone)").fill("2026-01-01T18:00")
    page.get_by_label("Ends (in that zone)").fill("2199-01-01T23:00")
    page.get_by_label("Requests per attendee per day (empty: no cap)").fill("100")
    page.get_by_label("Have the gateway make a code (shown once)").check()
    page.get_by_role("button", name="Create event").click()
    page.wait_for_selector("#secret")
    assert len(page.input_value("#secret")) == 14  # XXXX-XXXX-XXXX
    assert "2026-01-01 18:00 (Europe/Berlin)" in page.inner_text(".facts")
    check_accessibility(page)
    page.screenshot(path=str(shots / "event-admin.png"), full_page=True)
    # The admin session's own key in the playground: every model, in the ledger like any key.
    page.get_by_role("link", name="Playground").click()
    page.get_by_role("button", name="Use a key for my admin session").click()
    page.wait_for_selector("#playground[data-ready=true]")
    page.get_by_label("Message").fill("hello from the admin")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector(".message.assistant[data-streaming=false]")
    assert page.inner_text(".message.assistant .content") == "You said: hello from the admin"

    page.goto(f"{gateway.url}/console/admin/keys")
    page.get_by_text("Create a key").click()
    page.get_by_label("Name", exact=True).fill("workshop bot")
    page.get_by_label("Requests per minute (empty: no cap)").fill("30")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_selector("#secret")
    assert page.input_value("#secret").startswith("sk-gw-")
    assert "rpm 30" in page.inner_text("table")
    check_accessibility(page)
    page.screenshot(path=str(shots / "keys.png"), full_page=True)
    page.get_by_role("link", name="Usage", exact=True).click()
    page.get_by_label("Group by").select_option("key")
    page.get_by_role("button", name="Show").click()
    page.wait_for_selector("svg.chart")
    assert "console playground (…" in (page.text_content("svg.chart") or "")  # cut to fit; whole in the table
    assert "console playground (admin session)" in page.inner_text("table")
    check_accessibility(page)
    page.screenshot(path=str(shots / "usage-admin.png"), full_page=True)
    page.get_by_role("link", name="Deployments").click()
    page.wait_for_selector(".state.healthy")
    check_accessibility(page)
    page.goto(f"{gateway.url}/console/admin")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in")
    page.goto(f"{gateway.url}/console/admin")
    assert page.url.endswith("/console/sign-in")


def test_an_organiser_extends_an_event_and_revokes_an_attendee(phone: tuple[Page, Any], shots: Path) -> None:
    page, gateway = phone
    event = make_event(gateway, name="Night <hack>")
    people = {}
    for who in ({"name": "Ann"}, {"email": "bo@example.org"}, {"name": "<img src=x onerror=alert(1)>"}):
        answer = httpx.post(f"{gateway.url}/events/{event['id']}/register", json=who, timeout=30)
        assert answer.status_code == 201, answer.text
        people[next(iter(who.values()))] = answer.json()
    before = httpx.get(f"{gateway.url}/admin/events/{event['id']}", headers={"authorization": f"Bearer {MASTER}"})
    page.goto(f"{gateway.url}/console/sign-in")
    page.get_by_label("Master key").fill(MASTER)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("text=Registration link")
    page.get_by_role("link", name="Night <hack>").click()
    page.wait_for_selector("text=Actions")
    assert page.inner_text("h1") == "Night <hack>"
    assert "<img src=x onerror=alert(1)>" in page.inner_text("table")  # text, not an element
    old_end = page.inner_text(".facts dd:nth-of-type(3)")
    check_accessibility(page)
    page.get_by_role("button", name="Extend by one hour").click()
    page.wait_for_selector("text=The event was extended by one hour.")
    assert page.inner_text(".facts dd:nth-of-type(3)") != old_end
    after = httpx.get(f"{gateway.url}/admin/events/{event['id']}", headers={"authorization": f"Bearer {MASTER}"})
    assert after.json()["ends_at"] != before.json()["ends_at"]
    page.get_by_label("Search attendees by name or e-mail").fill("BO@example")
    page.get_by_role("button", name="Search").click()
    page.wait_for_selector("text=1 attendee matches")
    assert "bo@example.org" in page.inner_text("table") and "Ann" not in page.inner_text("table")
    check_accessibility(page)
    page.screenshot(path=str(shots / "event-organiser.png"), full_page=True)
    page.get_by_role("button", name="Revoke bo@example.org").click()
    page.wait_for_selector("text=The attendee's key was revoked")
    assert page.get_by_label("Search attendees by name or e-mail").input_value() == "BO@example"
    row = page.inner_text("table tbody tr")
    assert "revoked" in row and page.get_by_role("button", name="Revoke bo@example.org").count() == 0
    refused = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {people['bo@example.org']['key']}"},
        timeout=30,
    )
    assert refused.status_code == 401
    page.get_by_role("link", name="Requests, tokens and errors now").click()
    page.wait_for_selector("text=Top attendees")
    assert page.inner_text('[data-live="requests"]') == "0"
    check_accessibility(page)
    ann = people["Ann"]["key"]
    answer = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {ann}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    # The page's own script polls the summary and redraws in place (no reload): Ann appears among the leaders.
    page.wait_for_selector("#live-leaders th:has-text('Ann')")
    assert page.inner_text('[data-live="requests"]') == "1" and page.is_hidden("#live-none")
    page.screenshot(path=str(shots / "event-live.png"), full_page=True)


def test_the_organiser_sees_an_attendees_usage_and_revokes_them_mid_chat(
    browser: Browser, phone: tuple[Page, Any], shots: Path
) -> None:
    """Two browsers on one gateway: the attendee's phone and the organiser's laptop."""
    attendee, gateway = phone
    event = make_event(gateway, name="Demo night")
    secret = register(attendee, gateway, event, "Cleo")
    attendee.get_by_role("link", name="Open the playground").click()
    attendee.wait_for_selector("#playground[data-ready=true]")

    laptop = browser.new_context(viewport={"width": 1280, "height": 900})
    organiser = laptop.new_page()
    organiser.set_default_timeout(60_000)
    try:
        organiser.goto(f"{gateway.url}/console/sign-in")
        organiser.get_by_label("Master key").fill(MASTER)
        organiser.get_by_role("button", name="Sign in").click()
        organiser.get_by_role("link", name="Demo night").click()
        organiser.wait_for_selector("text=Actions")
        cleo = organiser.locator("table tbody tr", has_text="Cleo")
        requests_today, tokens_today = cleo.locator("td").nth(2), cleo.locator("td").nth(3)  # after status, actions
        # The playground has already listed the key's models (a request, in the ledger like any other).
        before, tokens_before = int(requests_today.inner_text()), int(tokens_today.inner_text())

        attendee.get_by_label("Message").fill("hello from the front row")
        attendee.get_by_role("button", name="Send").click()
        attendee.wait_for_selector(".message.assistant[data-streaming=false]")
        assert attendee.locator("#pg-status").is_hidden()
        # The organiser reloads until the ledger's flush (50 ms here) has the request: bounded, not a fixed sleep.
        for _ in range(60):
            organiser.reload()
            if int(requests_today.inner_text()) == before + 1:
                break
            organiser.wait_for_timeout(250)
        assert int(requests_today.inner_text()) == before + 1
        assert int(tokens_today.inner_text()) > tokens_before

        organiser.get_by_role("button", name="Revoke Cleo").click()
        organiser.wait_for_selector("text=The attendee's key was revoked")
        assert "revoked" in cleo.inner_text()
        organiser.screenshot(path=str(shots / "event-revoked.png"), full_page=True)
    finally:
        laptop.close()

    # The attendee's next message, in the page they already had open, is refused with a message saying why.
    attendee.get_by_label("Message").fill("are you still there?")
    attendee.get_by_role("button", name="Send").click()
    attendee.wait_for_selector("#pg-status:not([hidden])")
    status = attendee.inner_text("#pg-status")
    assert status.startswith("Key refused (401)"), status
    assert "revoked" in status.lower(), status
    assert secret not in status and attendee.locator(".message.assistant").count() == 1
    check_accessibility(attendee)


def test_the_calls_explorer_plays_a_call_and_filters_by_a_field(
    browser: Browser, console_gateway: Any, tmp_path: Path, shots: Path
) -> None:
    from .calls_data import seed_calls

    database_url = f"sqlite:///{tmp_path / 'calls.db'}"
    seed_calls(database_url, tmp_path / "recordings")
    gateway = console_gateway(calls={"database_url": database_url, "playback_sources": [str(tmp_path / "recordings")]})
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.set_default_timeout(60_000)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{gateway.url}/console/sign-in")
    page.get_by_label("Master key").fill(MASTER)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/admin")
    page.get_by_role("link", name="Calls", exact=True).click()
    page.wait_for_selector("#calls")
    page.get_by_label("Extracted field").select_option("sentiment")
    page.get_by_label("Field value (a list field: one of its items; any case)").fill("positive")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**field=sentiment**")
    assert page.eval_on_selector_all("#calls tbody th", "cells => cells.map(c => c.textContent)") == ["acme.ogg"]
    assert page.text_content("svg.chart") is not None
    check_accessibility(page)
    page.screenshot(path=str(shots / "calls.png"), full_page=True)

    page.get_by_role("link", name="acme.ogg").click()
    page.wait_for_selector("#transcript .segment")
    assert "Dana Whitfield" in page.inner_text("#fields")
    assert "“Hello, this is Dana Whitfield from Acme Ltd.”" in page.inner_text("#fields")
    wait_until(page, "document.getElementById('player').readyState >= 1")  # metadata, through the audio route
    assert page.evaluate("document.getElementById('player').duration") > 19
    # Clicking also starts playback: slowed, so that on a busy machine the highlight cannot move on to the next
    # segment before it is looked at.
    page.evaluate("const p = document.getElementById('player'); p.muted = true; p.playbackRate = 0.25")
    page.get_by_role("button", name="We want solar panels and a home battery.").click()
    page.wait_for_selector("#transcript .segment.current:has-text('solar panels')")
    assert page.evaluate("document.getElementById('player').currentTime") >= 4.0
    check_accessibility(page)
    page.screenshot(path=str(shots / "call.png"), full_page=True)

    page.goto(f"{gateway.url}/console/admin/calls?q=alert")  # the hostile call: its words are text
    page.get_by_role("link", name="hostile.ogg").click()
    page.wait_for_selector("#transcript .segment")
    assert "<script>alert(1)</script>" in page.inner_text("#transcript")
    assert page.query_selector("#fields img") is None
    context.close()
    assert dialogs == [], f"a page opened a dialog: {dialogs}"

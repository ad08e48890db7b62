"""The assistant's console page in a real browser, with a microphone that speaks: Chromium's fake capture device
plays a committed espeak-ng recording ("turn on the kitchen lights") into MediaRecorder while the talk button is
held; the gateway transcribes it with local Whisper, the emulator answers with the scripted tool calls, the simulated
home changes, and the reply is spoken by the local eSpeak NG voice, sentence by sentence, and played by the page.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from ..conftest import EMULATOR_KEY
from ..keyed import MASTER
from ..servers import AsgiServer
from ..services import unavailable
from .conftest import wait_until
from .test_browser import CHROMIUM, PHONE, check_accessibility

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

COMMAND = Path(__file__).parents[1] / "assistant" / "audio" / "kitchen_lights_on.wav"
ADMIN = {"authorization": f"Bearer {MASTER}"}
HOSTILE = '<script>alert("owned")</script><img src=x onerror=alert(2)>'


def padded_command(path: Path) -> None:
    """The spoken command between silences: Chromium loops the file, so a hold of a few seconds hears it once."""
    with wave.open(str(COMMAND)) as source:
        params = source.getparams()
        frames = source.readframes(source.getnframes())
    silence = b"\x00" * params.sampwidth * params.nchannels
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(silence * (params.framerate // 4) + frames + silence * (params.framerate * 5))


@pytest.fixture(scope="module")
def voice_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install '.[test]')")
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    speech = tmp_path_factory.mktemp("microphone") / "command.wav"
    padded_command(speech)
    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield launched
        launched.close()


@pytest.fixture
def voice_page(
    voice_browser: Browser, start_gateway: Any, emulator_server: AsgiServer, tmp_path: Path
) -> Iterator[tuple[Page, Any]]:
    deployments = [
        {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": emulator_server.url, "api_key": EMULATOR_KEY},
        {"model": "whisper-local", "provider": "local"},
        {"model": "tts-local", "provider": "local", "engine": "espeak-ng"},
    ]
    gateway = start_gateway(
        auth="keys",
        data_dir=str(tmp_path),
        deployments=deployments,
        admin={"master_key": MASTER},
        assistant={
            "enabled": True,
            "chat_model": "gpt-4o",
            "transcription_model": "whisper-local",
            "speech_model": "tts-local",
        },
    )
    context = voice_browser.new_context(**PHONE, permissions=["microphone"])
    page = context.new_page()
    page.set_default_timeout(90_000)  # a bound on a hang on a busy two-core machine, not an expectation
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield page, gateway
    context.close()
    assert dialogs == [], f"a page opened a dialog: {dialogs}"  # no injected script ever ran


@pytest.fixture
def script(emulator_server: AsgiServer) -> Iterator[Any]:
    control = httpx.Client(base_url=f"{emulator_server.url}/_emulator", timeout=10)

    def queue(*turns: dict[str, Any]) -> None:
        response = control.post("/script", json={"deployment": "chat-4o", "turns": list(turns), "append": True})
        assert response.status_code == 200, response.text

    yield queue
    control.delete("/script")
    control.close()


def stages(page: Page, turn: int) -> list[tuple[str, str]]:
    """(stage, text) of each stage the page shows for one turn (0-based)."""
    found: list[list[str]] = page.eval_on_selector_all(
        f"#as-turns > .turn:nth-child({turn + 1}) .stage",
        "items => items.map(i => [i.dataset.stage, i.querySelector('.content').textContent])",
    )
    return [(kind, text) for kind, text in found]


def home_of(gateway: Any, key: str) -> Any:
    answer = httpx.get(f"{gateway.url}/v1/assistant/home", headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_admin_holds_to_talk_and_the_home_answers_aloud(
    voice_page: tuple[Page, Any], script: Any, shots: Path
) -> None:
    page, gateway = voice_page
    script(
        {"tool_calls": [{"name": "set_light", "arguments": {"room": "kitchen", "on": True, "color": "blue"}}]},
        {"content": "The kitchen light is on. It is blue now."},
    )
    page.goto(f"{gateway.url}/console/sign-in")
    page.get_by_label("Master key").fill(MASTER)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/admin")
    page.get_by_role("link", name="Assistant").click()
    page.get_by_role("button", name="Use a key for my admin session").click()
    page.wait_for_selector("#assistant[data-ready=true] #as-home table")
    key = page.evaluate("sessionStorage.getItem('aoai-gateway-key')")
    assert key.startswith("sk-gw-")
    httpx.post(f"{gateway.url}/v1/assistant/home/reset", headers={"authorization": f"Bearer {key}"})
    page.get_by_role("button", name="Refresh").click()
    kitchen = page.locator("#as-home tr", has_text="kitchen")
    assert "false" in kitchen.inner_text()
    check_accessibility(page)

    talk = page.get_by_role("button", name="Hold to talk")
    talk.hover()
    page.mouse.down()
    page.wait_for_selector("#as-talk[aria-pressed=true]")
    page.wait_for_timeout(3000)  # how long the user speaks: the command is 2.1 s of the (looped) recording
    page.mouse.up()
    page.wait_for_selector("#as-turns > .turn[data-done=true]")

    shown = stages(page, 0)
    kinds = [kind for kind, _ in shown]
    assert kinds[:3] == ["transcript", "tool-call", "tool-result"], shown
    assert "kitchen" in shown[0][1].lower(), shown  # heard through the fake microphone and local Whisper
    assert '"room": "kitchen"' in shown[1][1] and '"color": "blue"' in shown[1][1]
    assert "reply" in kinds and kinds.count("audio") == 2, shown  # one spoken file per sentence
    reply = page.inner_text("#as-turns .stage.reply .content")
    assert reply == "The kitchen light is on. It is blue now."
    page.wait_for_selector("#assistant[data-played='2']")  # both sentences played to their end

    assert home_of(gateway, key)["lights"]["kitchen"] == {"on": True, "brightness": 100, "color": "blue"}
    wait_until(page, "document.querySelector('#as-home').textContent.includes('blue')")
    check_accessibility(page)
    page.screenshot(path=str(shots / "assistant.png"), full_page=True)

    # The space bar is a talk button too (not while typing in a field): held, it records; let go, it sends.
    script({"content": "It is on already."})
    page.locator("h1").click()
    page.keyboard.down("Space")
    page.wait_for_selector("#as-talk[aria-pressed=true]")
    page.wait_for_timeout(3000)
    page.keyboard.up("Space")
    page.wait_for_selector("#as-turns > .turn:nth-child(2)[data-done=true]")
    second = stages(page, 1)
    assert second[0][0] == "transcript" and "kitchen" in second[0][1].lower(), second
    page.wait_for_selector("#assistant[data-played='3']")


def test_typed_turns_show_hostile_strings_as_text_and_ask_before_unlocking(
    voice_page: tuple[Page, Any], script: Any
) -> None:
    page, gateway = voice_page
    made = httpx.post(f"{gateway.url}/admin/keys", json={"name": "voice"}, headers=ADMIN).json()
    httpx.post(f"{gateway.url}/v1/assistant/home/reset", headers={"authorization": f"Bearer {made['secret']}"})
    script(
        {
            "tool_calls": [
                {"name": "set_light", "arguments": {"room": HOSTILE}},
                {"name": "unlock_door", "arguments": {"door": "front door"}},
            ]
        },
        {"content": f"Shall I unlock the front door? {HOSTILE}"},
        {"content": "The front door is unlocked."},
    )
    page.goto(f"{gateway.url}/console/assistant")
    page.get_by_label("Your key").fill("sk-gw-not-a-key")
    page.get_by_role("button", name="Use key").click()
    page.wait_for_selector("#as-status:has-text('Key refused (401)')")
    assert page.get_by_role("button", name="Hold to talk").is_disabled()
    page.get_by_label("Your key").fill(made["secret"])
    page.get_by_role("button", name="Use key").click()
    page.wait_for_selector("#assistant[data-ready=true]")
    page.get_by_label("Or type a command").fill(f"{HOSTILE} unlock the front door")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector("#as-turns > .turn[data-done=true]")

    shown = stages(page, 0)
    assert shown[0] == ("transcript", f"{HOSTILE} unlock the front door")
    calls = [text for kind, text in shown if kind == "tool-call"]
    assert len(calls) == 2 and '"room": "<script>alert(\\"owned\\")</script><img' in calls[0], calls
    refused = page.inner_text("#as-turns .stage.failed")
    assert "Invalid arguments" in refused and "<script>alert(" in refused  # the schema refused it; shown as text
    assert page.inner_text("#as-turns .stage.reply .content").endswith(HOSTILE)
    assert page.locator("#as-turns script, #as-turns img").count() == 0  # shown as text, never as markup
    assert home_of(gateway, made["secret"])["doors"]["front door"] == {"locked": True}  # not before a yes
    assert page.locator("#as-confirm").is_visible()
    assert "unlock_door" in page.inner_text("#as-confirm-text")
    check_accessibility(page)

    page.get_by_role("button", name="Confirm").click()
    page.wait_for_selector("#as-turns > .turn:nth-child(2)[data-done=true]")
    second = stages(page, 1)
    assert [kind for kind, _ in second][:3] == ["transcript", "tool-call", "tool-result"], second
    assert page.locator("#as-confirm").is_hidden()
    assert home_of(gateway, made["secret"])["doors"]["front door"] == {"locked": False}
    wait_until(
        page,
        "[...document.querySelectorAll('#as-home tr')]"
        ".some(r => /front door/.test(r.textContent) && /false/.test(r.textContent))",
    )


def test_the_page_without_the_assistant_says_how_to_switch_it_on(console_gateway: Any) -> None:
    gateway = console_gateway()
    answer = httpx.get(f"{gateway.url}/console/assistant")
    assert answer.status_code == 200
    assert "assistant.enabled: true" in answer.text and "assistant.js" not in answer.text
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    # The admin key form refuses a post without the page's CSRF token.
    refused = httpx.post(f"{gateway.url}/console/assistant/key", data={"csrf": "forged"})
    assert refused.status_code == 403

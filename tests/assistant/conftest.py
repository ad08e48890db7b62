"""An assistant-enabled gateway in front of the session's emulator, and helpers to script the model and take turns.

    def test_x(assistant: AssistantClient, script: Script) -> None:
        script({"tool_calls": [{"name": "set_light", "arguments": {"room": "kitchen", "on": True}}]},
               {"content": "The kitchen light is on."})
        turn = assistant.turn(assistant.session(), text="turn on the kitchen light")

Model calls go in-process through the gateway to the emulator's `chat-4o` deployment, whose next answers the
test scripts over `/_emulator/script`; the scripts are dropped after each test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from ..conftest import EMULATOR_KEY, GatewayFactory
from ..servers import AsgiServer

CHAT_DEPLOYMENT = "chat-4o"
Script = Callable[..., None]


class AssistantClient:
    """The assistant's HTTP API over httpx, with a caller's key."""

    def __init__(self, gateway: AsgiServer, key: str | None = EMULATOR_KEY) -> None:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=f"{gateway.url}/v1/assistant", headers=headers, timeout=120)

    def session(self) -> str:
        response = self.http.post("/sessions")
        assert response.status_code == 201, response.text
        session_id: str = response.json()["id"]
        return session_id

    def turn(self, session_id: str, expect: int = 200, **body: Any) -> Any:
        response = self.http.post(f"/sessions/{session_id}/turns", json=body)
        assert response.status_code == expect, response.text
        return response.json()

    def stream(self, session_id: str, **body: Any) -> list[tuple[str, Any]]:
        """The turn's server-sent events, as (event, data) pairs."""
        with self.http.stream("POST", f"/sessions/{session_id}/turns", json={**body, "stream": True}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            raw = b"".join(response.iter_bytes())
        events = []
        for block in raw.split(b"\n\n"):
            if not block.strip():
                continue
            lines = dict(line.split(b": ", 1) for line in block.split(b"\n"))
            events.append((lines[b"event"].decode(), orjson.loads(lines[b"data"])))
        return events

    def home(self) -> Any:
        response = self.http.get("/home")
        assert response.status_code == 200, response.text
        return response.json()

    def reset_home(self) -> Any:
        return self.http.post("/home/reset").json()


def assistant_settings(**overrides: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "chat_model": "gpt-4o",
        "speech_model": "tts-1",
        "transcription_model": "whisper-1",
        **overrides,
    }


@pytest.fixture
def script(emulator_server: AsgiServer) -> Iterator[Script]:
    """Queue the chat model's next answers (emulator turns); all are dropped when the test ends."""
    control = httpx.Client(base_url=f"{emulator_server.url}/_emulator", timeout=10)

    def queue(*turns: dict[str, Any], deployment: str = CHAT_DEPLOYMENT) -> None:
        response = control.post("/script", json={"deployment": deployment, "turns": list(turns), "append": True})
        assert response.status_code == 200, response.text

    yield queue
    control.delete("/script")
    control.close()


ClientFactory = Callable[..., AssistantClient]


@pytest.fixture
def assistant_with(start_gateway: GatewayFactory) -> Iterator[ClientFactory]:
    """`assistant_with(max_rounds=2)`: a client of a gateway started with those assistant settings (or, with
    `gateway=`, of that gateway; `key=` the caller's key)."""
    clients: list[AssistantClient] = []

    def make(gateway: AsgiServer | None = None, key: str | None = EMULATOR_KEY, **settings: Any) -> AssistantClient:
        server = gateway or start_gateway(assistant=assistant_settings(**settings))
        clients.append(AssistantClient(server, key))
        return clients[-1]

    yield make
    for client in clients:
        client.http.close()


@pytest.fixture
def assistant(assistant_with: ClientFactory) -> AssistantClient:
    return assistant_with()


def light_call(room: str, **change: Any) -> dict[str, Any]:
    return {"name": "set_light", "arguments": {"room": room, **change}}

"""A keys-mode gateway with the console on, in front of the emulator, and helpers to make events.

gateway = console_gateway()                         # master key set: the console is on at /console
event = make_event(gateway, shared_code="open-sesame")
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import EMULATOR_KEY, GatewayFactory
from ..keyed import MASTER
from ..servers import AsgiServer

AUTH = {"authorization": f"Bearer {MASTER}"}


@pytest.fixture
def console_gateway(tmp_path: Path, start_gateway: GatewayFactory, emulator_server: AsgiServer) -> Any:
    def start(**overrides: Any) -> AsgiServer:
        upstream = emulator_server.url
        deployments = [
            # The emulator's slow-stream deployment sends a chunk every 150 ms: text visibly arrives in parts.
            {"model": "gpt-4o", "deployment": "slow-stream", "endpoint": upstream, "api_key": EMULATOR_KEY},
            {"model": "whisper-1", "deployment": "whisper", "endpoint": upstream, "api_key": EMULATOR_KEY},
            {"model": "tts-1", "deployment": "tts", "endpoint": upstream, "api_key": EMULATOR_KEY},
        ]
        settings: dict[str, Any] = {
            "auth": "keys",
            "data_dir": str(tmp_path),
            "deployments": deployments,
            "admin": {"master_key": MASTER},
            "access": {"usage_flush_seconds": 0.05},
            **overrides,
        }
        return start_gateway(**settings)

    return start


def make_event(gateway: AsgiServer, **fields: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    body = {
        "name": "Hack Day",
        "timezone": "Europe/Berlin",
        "starts_at": (now - dt.timedelta(hours=1)).isoformat(timespec="seconds"),
        "ends_at": (now + dt.timedelta(hours=3)).isoformat(timespec="seconds"),
        "models": ["gpt-4o", "whisper-1", "tts-1"],
        "daily_requests": 50,
        **fields,
    }
    response = httpx.post(f"{gateway.url}/admin/events", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def csrf_of(page: httpx.Response) -> str:
    """The hidden CSRF token of the first form on a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found[1]


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests put their screenshots: $AOAI_GATEWAY_SCREENSHOTS (docs/screenshots/ for the README)
    when set, else a temporary folder."""
    folder = os.environ.get("AOAI_GATEWAY_SCREENSHOTS")
    return Path(folder) if folder else tmp_path_factory.mktemp("screenshots")


def wait_until(page: Any, expression: str, *, tries: int = 1200) -> None:
    """Poll `expression` in `page` from here until it is truthy (up to `tries` x 0.1 s: a busy machine).
    Not `page.wait_for_function`: Playwright's own polling evaluates its predicate with eval inside the page,
    which the console's CSP (script-src 'self') refuses whenever the first look fails."""
    for _ in range(tries):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"never true: {expression}")

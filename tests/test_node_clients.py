"""The Vercel AI SDK through the gateway: `@ai-sdk/azure` (Responses, its default since AI SDK 6) and
`@ai-sdk/openai` (`openai.responses()` and `openai.chat()`), run by Node against the emulator on loopback.

tests/node/ is the suite's own node project (package.json and its lock); scripts/test installs it with
`npm ci --prefix tests/node`. Without node or that install the test skips with a visible reason, and fails
instead when AOAI_GATEWAY_REQUIRE_SERVICES is set. The script's fetch refuses any URL outside the gateway.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import EMULATOR_KEY
from .servers import AsgiServer
from .services import unavailable

NODE_PROJECT = Path(__file__).parent / "node"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None or not (NODE_PROJECT / "node_modules" / "ai").is_dir():
        unavailable(f"node or the AI SDK is not installed; run: npm ci --prefix {NODE_PROJECT}")
    return node


@pytest.fixture(scope="module")
def ai_sdk(node: str, gateway: AsgiServer) -> dict[str, Any]:
    """What the script saw, for every client (one node run for all the tests here)."""
    done = subprocess.run(
        [node, str(NODE_PROJECT / "ai_sdk.mjs")],
        env={"PATH": "/usr/bin:/bin", "GATEWAY_URL": gateway.url, "API_KEY": EMULATOR_KEY},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    results: dict[str, Any] = json.loads(done.stdout)
    return results


@pytest.mark.parametrize(
    ("client", "path"),
    [
        ("azureDefault", "/openai/v1/responses"),  # createAzure({baseURL: .../openai/v1}): Responses by default
        ("openaiResponses", "/v1/responses"),
        ("openaiChat", "/v1/chat/completions"),
    ],
)
def test_generate_stream_and_tools(ai_sdk: dict[str, Any], client: str, path: str) -> None:
    seen = ai_sdk[client]
    assert seen["sent"] == [f"POST {path}"] * 4  # text, stream, a tool call and the answer to its result
    assert seen["text"] == "You said: Say hello"
    assert seen["usage"]["inputTokens"] > 0 and seen["usage"]["outputTokens"] > 0
    # streamText's text arrives in pieces, as the deltas were relayed, and its usage from the stream's end.
    assert len(seen["pieces"]) > 1 and "".join(seen["pieces"]) == "You said: Tell me a short story"
    assert seen["streamedUsage"]["outputTokens"] > 0
    # The model called the tool, the SDK ran it and sent its result back; the answer is built on it.
    assert [call["name"] for call in seen["toolCalls"]] == ["get_weather"]
    city = seen["toolCalls"][0]["input"]["city"]
    assert seen["toolResults"] == [f"sunny in {city}"] and seen["steps"] == 2
    assert seen["toolAnswer"] == f"Tool results received: sunny in {city}"
    if "responses" in path:
        assert seen["responseId"].startswith("resp_")


def test_azure_url_shapes(ai_sdk: dict[str, Any]) -> None:
    # useDeploymentBasedUrls: the dated deployments route, which the gateway serves for Responses too.
    dated = ai_sdk["azureDeployments"]
    assert dated["text"] == "You said: Say hello"
    assert dated["sent"] == ["POST /openai/deployments/gpt-4o/responses?api-version=2025-04-01-preview"]
    # A non-Azure baseURL of .../openai makes the SDK call /openai/responses with no api-version: Azure's dated
    # route needs one, so the answer is a 400 that names it and says which URL to use instead.
    prefix = ai_sdk["azurePrefix"]
    assert prefix["sent"] == ["POST /openai/responses"] and prefix["status"] == 400
    error = json.loads(prefix["body"])["error"]
    assert error["param"] == "api-version" and "/openai/v1/responses" in error["message"]

"""Azure's error answers over plain HTTP: routing, keys, deployments, bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from aoai_gateway.emulator import EmulatorSettings

from .support import RunningEmulator

CHAT = "/openai/deployments/gpt-4o-deploy/chat/completions"
VERSION = {"api-version": "2024-10-21"}
BODY = {"messages": [{"role": "user", "content": "hi"}]}
ACCESS_DENIED = {
    "error": {
        "code": "401",
        "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
        "provide a valid key for an active subscription and use a correct regional API endpoint for "
        "your resource.",
    }
}


def test_missing_api_version_is_resource_not_found(emulator_http: httpx.Client) -> None:
    response = emulator_http.post(CHAT, json=BODY)

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "404", "message": "Resource not found"}}


@pytest.mark.parametrize(
    "path", ["/openai/deployments/gpt-4o-deploy/no/such/op", "/elsewhere", "/openai/v1/models/list"]
)
def test_unknown_paths_are_resource_not_found(emulator_http: httpx.Client, path: str) -> None:
    response = emulator_http.post(path, params=VERSION, json=BODY)

    assert response.status_code == 404 and response.json()["error"]["code"] == "404"


@pytest.mark.parametrize(
    "headers",
    [{}, {"api-key": "wrong"}, {"authorization": "Bearer wrong"}, {"authorization": "Basic test-key"}],
)
def test_missing_or_wrong_key_is_denied(emulator_fresh: RunningEmulator, headers: dict[str, str]) -> None:
    response = httpx.post(f"{emulator_fresh.base_url}{CHAT}", params=VERSION, json=BODY, headers=headers)

    assert response.status_code == 401 and response.json() == ACCESS_DENIED
    assert response.headers["apim-request-id"]
    assert emulator_fresh.requests_to("gpt-4o-deploy") == 0


def test_bearer_token_is_accepted(emulator_fresh: RunningEmulator) -> None:
    headers = {"authorization": "Bearer test-key"}
    response = httpx.post(f"{emulator_fresh.base_url}{CHAT}", params=VERSION, json=BODY, headers=headers)

    assert response.status_code == 200


def test_any_key_goes_when_no_keys_are_configured(
    emulator_factory: Any,
) -> None:
    open_emulator: RunningEmulator = emulator_factory(EmulatorSettings())
    url = f"{open_emulator.base_url}/openai/deployments/made-up/chat/completions"

    accepted = httpx.post(url, params=VERSION, json=BODY, headers={"api-key": "anything"})
    denied = httpx.post(url, params=VERSION, json=BODY)

    assert accepted.status_code == 200 and accepted.json()["model"] == "made-up"
    assert denied.status_code == 401


def test_unknown_deployment_is_deployment_not_found(emulator_http: httpx.Client) -> None:
    response = emulator_http.post("/openai/deployments/nope/chat/completions", params=VERSION, json=BODY)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "DeploymentNotFound"
    assert response.json()["error"]["message"].startswith("The API deployment for this resource does not exist.")


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "messages", "missing_required_parameter"),
        ({"messages": []}, "messages", "empty_array"),
        ({"messages": "hi"}, "messages", "invalid_type"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role", "missing_required_parameter"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "invalid_value"),
        ({**BODY, "max_tokens": 0}, "max_tokens", "integer_below_min_value"),
        ({**BODY, "n": "two"}, "n", "invalid_type"),
        ({**BODY, "stream_options": {"include_usage": True}}, "stream_options", None),
        ({**BODY, "tools": [{"type": "function"}]}, "tools[0].function.name", "missing_required_parameter"),
        (
            {
                **BODY,
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"function": {"name": "g"}},
            },
            "tool_choice",
            "invalid_value",
        ),
    ],
)
def test_bad_fields_get_openai_shaped_400s(
    emulator_http: httpx.Client, body: dict[str, Any], param: str, code: str | None
) -> None:
    response = emulator_http.post(CHAT, params=VERSION, json=body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
def test_malformed_json_is_a_400(emulator_http: httpx.Client, raw: bytes) -> None:
    response = emulator_http.post(CHAT, params=VERSION, content=raw, headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("We could not parse the JSON body of your request.")


def test_v1_surface_needs_a_model(emulator_http: httpx.Client) -> None:
    response = emulator_http.post("/openai/v1/chat/completions", json=BODY)

    assert response.status_code == 400 and response.json()["error"]["param"] == "model"


def test_malformed_test_control_headers_are_400s(emulator_http: httpx.Client) -> None:
    bad_fault = emulator_http.post(CHAT, params=VERSION, json=BODY, headers={"x-emulator-fault": "418"})
    bad_key = emulator_http.post(CHAT, params=VERSION, json=BODY, headers={"x-emulator-fault": "429;colour=red"})
    bad_content = emulator_http.post(CHAT, params=VERSION, json=BODY, headers={"x-emulator-content": "%%%"})
    bad_mode = emulator_http.post(CHAT, params=VERSION, json=BODY, headers={"x-emulator-response": "garbage"})

    for response in (bad_fault, bad_key, bad_content, bad_mode):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"].startswith("x-emulator-")

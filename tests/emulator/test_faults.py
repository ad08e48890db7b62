"""Fault injection: each kind as a client sees it, the header form, the control API, and repeatability."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import openai
import pytest
from openai import AzureOpenAI

from .support import RunningEmulator

CHAT = "/openai/deployments/gpt-4o-deploy/chat/completions"
VERSION = {"api-version": "2024-10-21"}
MESSAGES: Any = [{"role": "user", "content": "one two three four five six seven eight nine"}]
BODY = {"messages": MESSAGES}
STREAM_BODY = {**BODY, "stream": True}


def test_429_carries_azure_retry_headers(emulator_http: httpx.Client) -> None:
    response = emulator_http.post(
        CHAT, params=VERSION, json=BODY, headers={"x-emulator-fault": "429;retry_after_ms=1500"}
    )

    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.headers["retry-after-ms"] == "1500"
    assert response.headers["x-ms-retry-after-ms"] == "1500"
    error = response.json()["error"]
    assert error["code"] == "429"
    assert error["message"].startswith(
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 "
    )


def test_sdk_sees_rate_limit_error(emulator_client: AzureOpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        emulator_client.chat.completions.create(
            model="gpt-4o-deploy", messages=MESSAGES, extra_headers={"x-emulator-fault": "429"}
        )


@pytest.mark.parametrize(("kind", "status"), [("500", 500), ("503", 503)])
def test_server_errors(emulator_http: httpx.Client, kind: str, status: int) -> None:
    response = emulator_http.post(CHAT, params=VERSION, json=BODY, headers={"x-emulator-fault": kind})

    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_500_names_the_request_id(emulator_http: httpx.Client) -> None:
    response = emulator_http.post(CHAT, params=VERSION, json=BODY, headers={"x-emulator-fault": "500"})

    assert response.headers["apim-request-id"] in response.json()["error"]["message"]


def test_timeout_outlasts_the_client_timeout(emulator_fresh: RunningEmulator, emulator_client: AzureOpenAI) -> None:
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        emulator_client.with_options(timeout=0.3).chat.completions.create(
            model="gpt-4o-deploy", messages=MESSAGES, extra_headers={"x-emulator-fault": "timeout"}
        )
    assert time.monotonic() - started < 5

    # The emulator notices the client hanging up instead of holding the request for 30 s.
    deadline = time.monotonic() + 60  # a bound for a stuck test, not a speed requirement
    while emulator_fresh.deployment_stats("gpt-4o-deploy").get("statuses", {}).get("timeout") != 1:
        assert time.monotonic() < deadline, emulator_fresh.stats()
        time.sleep(0.02)


def test_timeout_answers_408_to_a_patient_client(emulator_http: httpx.Client) -> None:
    response = emulator_http.post(CHAT, params=VERSION, json=BODY, headers={"x-emulator-fault": "timeout;sleep_s=0.05"})

    assert response.status_code == 408 and response.json()["error"]["code"] == "Timeout"


def test_reset_mid_stream_is_an_incomplete_body(emulator_http: httpx.Client) -> None:
    received: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        emulator_http.stream(
            "POST",
            CHAT,
            params=VERSION,
            json=STREAM_BODY,
            headers={"x-emulator-fault": "reset;after_chunks=3"},
        ) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line:
                received.append(line)

    assert len(received) == 3, "the first three events arrive before the connection drops"
    assert "[DONE]" not in "".join(received)


def test_reset_of_a_whole_response(emulator_http: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        emulator_http.post(CHAT, params=VERSION, json=BODY, headers={"x-emulator-fault": "reset"})


class _Collecting(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_injected_resets_leave_no_traceback_in_the_server_log(emulator_http: httpx.Client) -> None:
    handler = _Collecting()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            emulator_http.post(CHAT, params=VERSION, json=BODY, headers={"x-emulator-fault": "reset"})
    finally:
        logger.removeHandler(handler)

    assert [record for record in handler.records if record.exc_info] == []


def test_sdk_stream_breaks_on_reset(emulator_client: AzureOpenAI) -> None:
    stream = emulator_client.chat.completions.create(
        model="gpt-4o-deploy",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-emulator-fault": "reset;after_chunks=2"},
    )
    with pytest.raises(openai.APIConnectionError):
        list(stream)


def test_control_api_throttles_one_deployment(emulator_fresh: RunningEmulator, emulator_http: httpx.Client) -> None:
    emulator_fresh.set_faults("gpt-4o-deploy", {"kind": "429", "retry_after_ms": 500})

    throttled = emulator_http.post(CHAT, params=VERSION, json=BODY)
    other = emulator_http.post("/openai/deployments/gpt-4o-backup/chat/completions", params=VERSION, json=BODY)

    assert throttled.status_code == 429 and throttled.headers["retry-after-ms"] == "500"
    assert other.status_code == 200
    stats = emulator_fresh.stats()
    assert stats["deployments"]["gpt-4o-deploy"]["statuses"] == {"429": 1}
    assert stats["deployments"]["gpt-4o-backup"]["statuses"] == {"200": 1}
    assert emulator_fresh.requests_to("gpt-4o-deploy") == 1, "a throttled request still counts as sent"


def test_header_fault_wins_over_deployment_faults(emulator_fresh: RunningEmulator, emulator_http: httpx.Client) -> None:
    url = "/openai/deployments/always-503/chat/completions"

    configured = emulator_http.post(url, params=VERSION, json=BODY)
    from_header = emulator_http.post(url, params=VERSION, json=BODY, headers={"x-emulator-fault": "500"})

    assert (configured.status_code, from_header.status_code) == (503, 500)


def test_override_and_delete_restore_the_configured_faults(
    emulator_fresh: RunningEmulator, emulator_http: httpx.Client
) -> None:
    url = "/openai/deployments/always-503/chat/completions"
    emulator_fresh.set_faults("always-503")  # an empty list switches the configured fault off
    assert emulator_http.post(url, params=VERSION, json=BODY).status_code == 200

    emulator_fresh.control("DELETE", "faults", params={"deployment": "always-503"})
    assert emulator_http.post(url, params=VERSION, json=BODY).status_code == 503


def test_wildcard_applies_to_deployments_without_their_own_override(
    emulator_fresh: RunningEmulator, emulator_http: httpx.Client
) -> None:
    emulator_fresh.set_faults("*", {"kind": "503"})
    emulator_fresh.set_faults("gpt-4o-backup")

    assert emulator_http.post(CHAT, params=VERSION, json=BODY).status_code == 503
    backup = "/openai/deployments/gpt-4o-backup/chat/completions"
    assert emulator_http.post(backup, params=VERSION, json=BODY).status_code == 200


def test_fault_rate_draws_repeat_after_reset(emulator_fresh: RunningEmulator, emulator_http: httpx.Client) -> None:
    def run() -> list[int]:
        emulator_fresh.set_faults("gpt-4o-deploy", {"kind": "503", "rate": 0.5})
        return [emulator_http.post(CHAT, params=VERSION, json=BODY).status_code for _ in range(20)]

    first = run()
    emulator_fresh.control("POST", "reset")
    second = run()

    assert first == second
    assert 0 < first.count(503) < 20


def test_invalid_control_request_is_explained(emulator_fresh: RunningEmulator) -> None:
    response = httpx.post(f"{emulator_fresh.base_url}/_emulator/faults", json={"faults": [{"kind": "teapot"}]})

    assert response.status_code == 400
    assert "faults.0.kind" in response.json()["error"]["message"]


def test_configured_faults_are_listed(emulator_fresh: RunningEmulator) -> None:
    faults = emulator_fresh.control("GET", "faults")

    assert faults["configured"]["always-503"][0]["kind"] == "503"
    assert faults["overrides"] == {}

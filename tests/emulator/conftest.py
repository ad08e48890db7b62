"""Fixtures that run the Azure OpenAI emulator on a real socket, in a background thread.

    def test_chat(emulator_client: AzureOpenAI) -> None:
        emulator_client.chat.completions.create(model="gpt-4o-deploy", messages=[...])

`emulator_live` starts once per session; `emulator_fresh` hands it out with its run-time state reset
(faults, counters, scripted responses, random draws), so tests do not depend on each other's order.
`emulator_factory` starts extra emulators with other settings for the test that needs them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import httpx
import pytest
from openai import AzureOpenAI

from aoai_gateway.emulator import EmulatorSettings

from .support import API_KEY, API_VERSION, RunningEmulator, running, standard_settings


@pytest.fixture(scope="session")
def emulator_live() -> Iterator[RunningEmulator]:
    with running(standard_settings()) as emulator:
        yield emulator


@pytest.fixture
def emulator_fresh(emulator_live: RunningEmulator) -> RunningEmulator:
    emulator_live.control("POST", "reset")
    return emulator_live


@pytest.fixture(scope="session")
def emulator_sdk(emulator_live: RunningEmulator) -> Iterator[AzureOpenAI]:
    client = AzureOpenAI(
        azure_endpoint=emulator_live.base_url,
        api_key=API_KEY,
        api_version=API_VERSION,
        max_retries=0,
        timeout=10,
    )
    with client:
        yield client


@pytest.fixture(scope="session")
def emulator_session_http(emulator_live: RunningEmulator) -> Iterator[httpx.Client]:
    headers = {"api-key": API_KEY}
    with httpx.Client(base_url=emulator_live.base_url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def emulator_client(emulator_fresh: RunningEmulator, emulator_sdk: AzureOpenAI) -> AzureOpenAI:
    """The SDK's AzureOpenAI client on the freshly reset emulator (no retries, so faults show)."""
    return emulator_sdk


@pytest.fixture
def emulator_http(emulator_fresh: RunningEmulator, emulator_session_http: httpx.Client) -> httpx.Client:
    """An httpx client with the emulator's key and base URL, on the freshly reset emulator."""
    return emulator_session_http


@pytest.fixture
def emulator_factory() -> Iterator[Callable[[EmulatorSettings], RunningEmulator]]:
    with contextlib.ExitStack() as stack:

        def start(settings: EmulatorSettings) -> RunningEmulator:
            return stack.enter_context(running(settings))

        yield start

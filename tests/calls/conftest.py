"""Fixtures for call analytics: the real services its sources and queues talk to, started once per session.

`calls_emulator` is an Azure OpenAI emulator of its own whose extraction deployments answer as scripted: a valid
answer, JSON that is cut short then a valid one (re-ask), never valid JSON, a known document (for queries).
`calls_settings(...)` is a gateway configuration whose deployments all point at it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aoai_gateway.config import Settings
from aoai_gateway.emulator import EmulatorSettings
from aoai_gateway.emulator import create_app as create_emulator

from ..servers import AsgiServer
from .azurite import run_azurite

EMULATOR_KEY = "emulator-key-0123456789"
SPEECH_AUDIO = Path(__file__).parent.parent / "speech" / "audio"
CALL_AUDIO = Path(__file__).parent / "audio"

ACME = {
    "agent_name": "Sam Carter",
    "seller_company": "Northlight Solar",
    "customer_name": "Dana Whitfield",
    "company": "Acme Ltd",
    "location": None,  # a place must be said where it rests: the emulated transcript names none
    "products_of_interest": ["solar panels", "home battery"],
    "budget": "a few thousand pounds",  # no amount: the emulated transcript states none to quote
    "timeline": "before the summer",
    "sentiment": "positive",
    "next_steps": "roof survey on Thursday",
    "summary": "Wants panels and a battery.",
}
# The emulator's transcripts all say "This is an emulated transcription of NAME.": a quote that grounds anything.
QUOTE = "an emulated transcription"


def grounded(fields: dict[str, Any], quote: str = QUOTE) -> dict[str, Any]:
    """`fields` as a grounded answer: each value with `quote` (each item of a list too); `summary` as it is."""

    def pair(value: Any) -> dict[str, Any]:
        return {"value": value, "quote": None if value is None else quote}

    return {
        name: value if name == "summary" else [pair(v) for v in value] if isinstance(value, list) else pair(value)
        for name, value in fields.items()
    }


ACME_ANSWER = grounded(ACME)
# A model that invents: a name the call never says, hostile and oversized quotes, a budget its quote does not state,
# one value quoted loosely.
INVENTED_ANSWER = {
    **grounded({name: None for name in ACME}),
    "customer_name": {"value": "Dana Whitfield", "quote": "my name is Dana Whitfield"},
    "company": {"value": "Acme Ltd", "quote": QUOTE},
    "location": {"value": "\x1b]0;pwned\x07Leeds", "quote": "\x1b[2J\x00\u202e"},
    "products_of_interest": [
        {"value": "solar panels", "quote": QUOTE},
        {"value": "home battery", "quote": "battery " * 2_000},
    ],
    "budget": {"value": "£9,000", "quote": QUOTE},  # a real quote that states no amount
    "timeline": {"value": "before the summer", "quote": "  AN Emulated,\ttranscription!! "},
    "sentiment": {"value": "positive", "quote": "The customer is keen to buy."},
    "summary": "Made up.",
}


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """The connection string of an Azurite Blob endpoint (the development account) on a free loopback port."""
    with run_azurite() as connection_string:
        yield connection_string


@pytest.fixture(scope="session")
def calls_emulator() -> Iterator[AsgiServer]:
    settings = EmulatorSettings.model_validate(
        {
            "api_keys": [EMULATOR_KEY],
            "deployments": [
                {"name": "gpt-4o"},
                {"name": "whisper"},
                {"name": "extract-acme", "model": "gpt-4o", "responses": [json.dumps(ACME_ANSWER)]},
                {"name": "extract-garbage", "model": "gpt-4o", "responses": ["Sure! Here are the fields: none"]},
                {"name": "extract-invented", "model": "gpt-4o", "responses": [json.dumps(INVENTED_ANSWER)]},
                # cut short, then valid JSON that breaks the schema, then a valid answer
                {
                    "name": "extract-reask",
                    "model": "gpt-4o",
                    "responses": [
                        '{"customer_name": "Dana',
                        json.dumps({**ACME_ANSWER, "sentiment": {"value": "keen", "quote": QUOTE}}),
                        json.dumps(ACME_ANSWER),
                    ],
                },
                {"name": "extract-slow", "model": "gpt-4o", "latency_ms": 300},
            ],
        }
    )
    with AsgiServer(create_emulator(settings)) as server:
        yield server


def emulator_stats(emulator: AsgiServer) -> dict[str, Any]:
    deployments: dict[str, Any] = httpx.get(f"{emulator.url}/_emulator/stats").json()["deployments"]
    return deployments


def requests_to(emulator: AsgiServer, deployment: str) -> int:
    return int(emulator_stats(emulator).get(deployment, {}).get("requests", 0))


@pytest.fixture
def reset_emulator(calls_emulator: AsgiServer) -> Iterator[AsgiServer]:
    """The calls emulator with its counters, faults and scripted answers back at the start."""
    httpx.post(f"{calls_emulator.url}/_emulator/reset").raise_for_status()
    yield calls_emulator
    httpx.post(f"{calls_emulator.url}/_emulator/reset").raise_for_status()


CallsSettingsFactory = Callable[..., Settings]
CallsConfigFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def calls_config(tmp_path: Path, reset_emulator: AsgiServer) -> CallsConfigFactory:
    """`calls_config(extract="extract-acme", **calls_overrides)`: a gateway + pipeline config as a dict."""

    def make(extract: str = "gpt-4o", **calls: Any) -> dict[str, Any]:
        url = reset_emulator.url
        deployments: list[dict[str, Any]] = [
            {"model": model, "deployment": name, "endpoint": url, "api_key": EMULATOR_KEY}
            for model, name in [
                ("gpt-4o", "gpt-4o"),
                ("whisper-1", "whisper"),
                ("acme", "extract-acme"),
                ("garbage", "extract-garbage"),
                ("invented", "extract-invented"),
                ("reask", "extract-reask"),
                ("slow", "extract-slow"),
            ]
        ]
        deployments.append({"model": "whisper-local", "provider": "local"})
        models = {
            "extract-acme": "acme",
            "extract-garbage": "garbage",
            "extract-invented": "invented",
            "extract-reask": "reask",
            "extract-slow": "slow",
        }
        options = {
            "database_url": f"sqlite:///{tmp_path / 'calls.db'}",
            "extract_model": models.get(extract, extract),
            "retry_base_seconds": 0.05,
            "retry_max_seconds": 0.2,
            "lease_seconds": 2.0,
            **calls,
        }
        return {"data_dir": str(tmp_path), "deployments": deployments, "calls": options}

    return make


@pytest.fixture
def calls_settings(calls_config: CallsConfigFactory) -> CallsSettingsFactory:
    """`calls_settings(extract="extract-acme", database_url=..., **calls_overrides)`: gateway + pipeline config."""

    def make(extract: str = "gpt-4o", **calls: Any) -> Settings:
        return Settings.model_validate(calls_config(extract, **calls))

    return make


def one_recording(folder: Path, name: str, source: Path) -> Path:
    """`folder`, created, holding a copy of `source` named `name`."""
    folder.mkdir()
    shutil.copy(source, folder / name)
    return folder


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    """Five short recordings in five formats, plus a byte-identical copy of one under another name."""
    folder = tmp_path / "recordings"
    (folder / "2026" / "11").mkdir(parents=True)
    for name in ("report.wav", "weather.mp3", "office.ogg", "market.flac"):
        shutil.copy(SPEECH_AUDIO / name, folder / name)
    shutil.copy(SPEECH_AUDIO / "train.webm", folder / "2026" / "11" / "train.webm")
    shutil.copy(SPEECH_AUDIO / "report.wav", folder / "2026" / "11" / "report-again.wav")
    (folder / "notes.txt").write_text("not audio")
    return folder

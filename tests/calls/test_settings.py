"""The pipeline's settings: every one in `Settings`, the environment read by the config loader alone."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import pytest

import aoai_gateway.calls.cli
from aoai_gateway.calls.azure_blob import open_azure_source
from aoai_gateway.calls.cli import _settings
from aoai_gateway.config import ConfigError, load_settings

from .conftest import write_config

STORAGE_ENV = {
    "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
    "AZURE_STORAGE_ACCOUNT": "calls",
    "AZURE_STORAGE_KEY": "a2V5",
    "AZURE_STORAGE_SAS_TOKEN": "sv=2024&sig=abc",
    "AZURE_STORAGE_BLOB_ENDPOINT": "http://127.0.0.1:10000/calls",
}


def test_the_usual_variables_set_calls_settings_and_beat_the_file(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config.yaml",
        {"calls": {"queue_name": "from-file", "api_key": "file-key", "azure_storage": {"account": "file-account"}}},
    )
    calls = load_settings(config, {}).calls
    assert (calls.queue_name, calls.model_key, calls.azure_storage.account) == ("from-file", "file-key", "file-account")

    env = {**STORAGE_ENV, "AOAI_GATEWAY_CALLS_QUEUE_NAME": "staging.calls", "OPENAI_API_KEY": "openai-key"}
    calls = load_settings(config, env).calls
    assert calls.queue_name == "staging.calls" and calls.model_key == "openai-key"
    storage = calls.azure_storage
    assert storage.account == "calls" and storage.blob_endpoint == "http://127.0.0.1:10000/calls"
    assert storage.connection_string is not None and storage.connection_string.get_secret_value() == (
        "UseDevelopmentStorage=true"
    )
    assert storage.key is not None and storage.key.get_secret_value() == "a2V5"
    assert "a2V5" not in repr(calls) and "sig=abc" not in repr(calls)  # secrets stay out of reprs and logs

    both = load_settings(config, {"AOAI_GATEWAY_CALLS_API_KEY": "calls-key", "OPENAI_API_KEY": "openai-key"})
    assert both.calls.model_key == "calls-key"
    args = argparse.Namespace(config=str(config), api_key="flag-key")
    assert _settings(args, {"AOAI_GATEWAY_CALLS_API_KEY": "calls-key"}).calls.model_key == "flag-key"


def test_a_queue_name_the_broker_would_refuse_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="queue_name"):
        load_settings(None, {"AOAI_GATEWAY_CALLS_QUEUE_NAME": "calls; rm -rf /"})


async def test_storage_credentials_from_the_config_file_open_a_source(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config.yaml",
        {"calls": {"azure_storage": {"account": "devstoreaccount1", "key": "a2V5", "blob_endpoint": "http://h/x"}}},
    )
    storage = load_settings(config, {}).calls.azure_storage
    async with contextlib.aclosing(open_azure_source("azure://calls/2026", storage)) as source:
        assert source.uri == "azure://calls/2026"


def test_no_calls_module_reads_the_environment() -> None:
    package = Path(aoai_gateway.calls.cli.__file__).parent
    for module in package.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        # cli.py hands the environment to load_settings, and that is all anyone does with it.
        for read in ("os.environ", "getenv", "environ.get(", "environ["):
            assert read not in text, f"{module.name} reads the environment ({read})"

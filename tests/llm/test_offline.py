"""examples/offline.yaml: local speech and a local chat model, the whole calls pipeline with no network.

The example's model_path is replaced by the tests' tiny random-weight GGUF; its extractions are gibberish, so the
test asserts that a call goes through both local models into a stored document valid against its schema.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from aoai_gateway.calls.cli import open_pipeline, open_store
from aoai_gateway.calls.runner import Runner
from aoai_gateway.calls.sources import LocalSource
from aoai_gateway.config import load_settings

ROOT = Path(__file__).parents[2]
CALL = ROOT / "tests" / "calls" / "audio" / "short-call.ogg"
# Bounded strings: a random-weight model closes a free string only by chance.
SCHEMA = {
    "title": "call",
    "type": "object",
    "properties": {
        "customer_name": {"type": ["string", "null"], "maxLength": 24},
        "sentiment": {"enum": ["positive", "neutral", "negative"]},
    },
    "required": ["customer_name", "sentiment"],
    "additionalProperties": False,
}


def offline_config(tmp_path: Path, tiny_model: Path) -> Path:
    config = yaml.safe_load((ROOT / "examples" / "offline.yaml").read_text())
    llm = next(d for d in config["deployments"] if d.get("engine") == "llama.cpp")
    llm["model_path"] = str(tiny_model)
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    config["data_dir"] = str(tmp_path / "data")
    config["calls"] |= {"schema_path": str(tmp_path / "schema.json"), "grounding": False}
    path = tmp_path / "offline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_offline_example_names_local_models_only() -> None:
    config = yaml.safe_load((ROOT / "examples" / "offline.yaml").read_text())
    assert {d["provider"] for d in config["deployments"]} == {"local"}
    models = {d["model"] for d in config["deployments"]}
    assert {config["calls"]["transcribe_model"], config["calls"]["extract_model"]} <= models
    assert "api_base" not in config["calls"]  # in-process: nothing leaves the machine


@pytest.mark.slow
async def test_a_call_goes_through_local_speech_and_the_local_llm(tmp_path: Path, tiny_model: Path) -> None:
    settings = load_settings(offline_config(tmp_path, tiny_model), {})
    folder = tmp_path / "calls"
    folder.mkdir()
    shutil.copy(CALL, folder / "short-call.ogg")
    source = LocalSource(str(folder))
    async with open_pipeline(settings, None) as pipeline:
        summary = await Runner(pipeline, settings.calls.concurrency).run_batch(
            [(source, item) for item in await source.scan()]
        )
    assert summary.processed == 1, summary
    store = await open_store(settings)
    try:
        (record,) = await store.query(limit=None)
    finally:
        await store.db.close()
    assert record.document is not None and "david miller" in record.document["transcript"].lower()
    jsonschema.validate(record.fields, SCHEMA)
    assert record.document["models"]["extraction"]["mode"] == "tool"

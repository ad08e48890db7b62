"""A local chat model under `auth: keys`: a gateway key is needed, and the ledger counts the model's own usage,
also for a stream whose client did not ask for the usage chunk (the gateway asks, and hides it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from aoai_gateway.app import create_app
from aoai_gateway.config import Settings
from aoai_gateway.store import KeySpec, KeyStore, Limits, connect_database, migrate, usage_report

from ..servers import AsgiServer

POLL_SECONDS = 30.0


async def test_keys_mode_meters_a_local_model(tmp_path: Path, tiny_model: Path) -> None:
    db = await connect_database(f"sqlite:///{tmp_path / 'gateway.db'}")
    await migrate(db)
    _, secret = await KeyStore(db).create(KeySpec("t", ("tiny-local",), Limits(), None))
    local = {"model": "tiny-local", "provider": "local", "engine": "llama.cpp", "model_path": str(tiny_model)}
    settings = Settings.model_validate(
        {
            "auth": "keys",
            "data_dir": str(tmp_path),
            "deployments": [local],
            "admin": {"master_key": "master-key-local-llm-01"},
            "access": {"usage_flush_seconds": 0.05},
        }
    )
    hello = [{"role": "user", "content": "hello"}]
    try:
        with AsgiServer(create_app(settings)) as server:
            stranger = OpenAI(base_url=f"{server.url}/v1", api_key="sk-not-a-key", max_retries=0)
            with stranger, pytest.raises(openai.AuthenticationError):
                stranger.chat.completions.create(model="tiny-local", messages=hello, max_tokens=3)  # type: ignore[arg-type]
            with OpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0) as client:
                chunks = list(
                    client.chat.completions.create(model="tiny-local", messages=hello, max_tokens=9, stream=True)  # type: ignore[arg-type]
                )
                assert chunks and all(c.usage is None and c.choices for c in chunks)  # not asked: none shown
                client.chat.completions.create(model="tiny-local", messages=hello, max_tokens=4)  # type: ignore[arg-type]
            rows: list[dict[str, object]] = []
            for _ in range(int(POLL_SECONDS / 0.05)):
                rows = await usage_report(db, by="key")
                if rows and rows[0]["requests"] == 2:
                    break
                await asyncio.sleep(0.05)
        assert rows and rows[0]["requests"] == 2, rows
        assert rows[0]["completion_tokens"] == 13 and int(rows[0]["prompt_tokens"]) > 0  # type: ignore[call-overload]
    finally:
        await db.close()

"""A gateway serving a tiny random-weight GGUF (tiny_model.py, written once for the session) as `tiny-local`.

Its answers are gibberish: the tests assert structure, limits and validity, never content.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from aoai_gateway.app import create_app
from aoai_gateway.config import Settings

from ..servers import AsgiServer
from .tiny_model import write_tiny_model

CONTEXT = 2048


def llm_settings(model: Path, local_llm: dict[str, Any] | None = None, **deployment: Any) -> Settings:
    local = {"model": "tiny-local", "provider": "local", "engine": "llama.cpp", "model_path": str(model), **deployment}
    return Settings.model_validate(
        {"deployments": [local], "local_llm": {"context_tokens": CONTEXT, **(local_llm or {})}}
    )


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny-llm") / "tiny.gguf")


@pytest.fixture(scope="session")
def llm_gateway(tiny_model: Path) -> Iterator[AsgiServer]:
    with AsgiServer(create_app(llm_settings(tiny_model))) as server:
        yield server


@pytest.fixture
def client(llm_gateway: AsgiServer) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{llm_gateway.url}/v1", api_key="any-key", max_retries=0, timeout=120) as client:
        yield client

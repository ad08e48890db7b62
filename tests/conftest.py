"""Shared fixtures: the Azure OpenAI emulator and the gateway, each on a real loopback socket.

The gateway under test is configured with one deployment of each kind, all served by the emulator:
Azure deployment-style URLs behind an API Management-like path prefix, Azure's v1 surface, an
OpenAI-compatible provider, and one deployment with a server-side key.
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from aoai_gateway.app import create_app
from aoai_gateway.config import Settings
from aoai_gateway.emulator import EmulatorSettings
from aoai_gateway.emulator import create_app as create_emulator
from aoai_gateway.logs import AccessLog
from aoai_gateway.store import KeyStore, connect_database, migrate

from .keyed import MASTER, Keys
from .recorder import Recorder
from .servers import AsgiServer
from .services import POSTGRES, REDIS, REQUIRE_SERVICES, require

EMULATOR_KEY = "emulator-key-0123456789"
SERVER_KEY = EMULATOR_KEY  # the key the gateway holds for `gpt-4o-keyed`; clients never see it


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings read the environment; a developer's own Azure variables must not leak into tests.
    for name in list(os.environ):
        ours = name.startswith(("AZURE_OPENAI_", "OPENAI_", "AOAI_GATEWAY_")) and name != REQUIRE_SERVICES
        if ours or name in ("API_BASE", "LISTEN"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[AsgiServer]:
    settings = EmulatorSettings.model_validate(
        {
            "api_keys": [EMULATOR_KEY],
            "auto_deployments": True,
            "deployments": [{"name": "slow-stream", "model": "gpt-4o", "chunk_interval_ms": 150}],
        }
    )
    with AsgiServer(create_emulator(settings)) as server:
        yield server


def gateway_settings(upstream_url: str, **overrides: Any) -> Settings:
    upstream = upstream_url
    deployments = [
        {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": f"{upstream}/apim/team"},
        {"model": "text-embedding-3-small", "deployment": "embed-small", "endpoint": upstream},
        {"model": "whisper-1", "deployment": "whisper", "endpoint": upstream},
        {"model": "tts-1", "deployment": "tts", "endpoint": upstream},
        {"model": "dall-e-3", "deployment": "dalle3", "endpoint": upstream},
        {"model": "gpt-4o-v1", "deployment": "chat-v1", "endpoint": upstream, "api_style": "v1"},
        {
            "model": "oss-llama",
            "deployment": "llama-upstream",
            "provider": "openai",
            "endpoint": f"{upstream}/openai/v1",
        },
        {"model": "gpt-4o-keyed", "deployment": "chat-keyed", "endpoint": upstream, "api_key": SERVER_KEY},
        {"model": "gpt-4o-slow", "deployment": "slow-stream", "endpoint": upstream},
    ]
    # Client headers go upstream by allowlist: the tests' own (fault injection, a custom one) are added to it.
    forwarded = {"forward_headers": ["x-emulator-fault", "x-custom"]}
    data: dict[str, Any] = {"deployments": deployments, "upstream": forwarded, **overrides}
    return Settings.model_validate(data)


GatewayFactory = Callable[..., AsgiServer]


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, AsgiServer]]:
    """A real upstream that records every request reaching it (tests/recorder.py), on a loopback socket."""
    rec = Recorder()
    with AsgiServer(rec) as server:
        yield rec, server


@pytest.fixture
def start_gateway(emulator_server: AsgiServer) -> Iterator[GatewayFactory]:
    """Start a gateway with custom settings: `start_gateway(upstream_url, cors={"enabled": True})`."""
    started: list[AsgiServer] = []

    def start(upstream_url: str | None = None, access_log: AccessLog | None = None, **overrides: Any) -> AsgiServer:
        settings = gateway_settings(upstream_url or emulator_server.url, **overrides)
        server = AsgiServer(create_app(settings, access_log=access_log), settings.server)
        started.append(server.__enter__())
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def gateway(emulator_server: AsgiServer) -> Iterator[AsgiServer]:
    with AsgiServer(create_app(gateway_settings(emulator_server.url))) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    require("PostgreSQL", "127.0.0.1", 5432)
    import uuid

    import asyncpg  # type: ignore[import-untyped]

    name = f"aoai_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    # Its own thread and loop: this fixture may be first requested from inside a running test loop.
    run_in_thread(admin(f"CREATE DATABASE {name}"))
    yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    run_in_thread(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def run_in_thread(coroutine: Coroutine[Any, Any, None]) -> None:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def redis_url() -> str:
    require("Redis", "127.0.0.1", 6379)
    return REDIS


@pytest.fixture
async def keyed(tmp_path: Path, start_gateway: GatewayFactory, emulator_server: AsgiServer) -> AsyncIterator[Any]:
    """A factory of `auth: keys` gateways sharing one SQLite store, the store's keys, and the access log."""
    log = io.BytesIO()

    def start(upstream: str | None = None, **overrides: Any) -> AsgiServer:
        deployments = [
            {
                "model": "gpt-4o",
                "deployment": "chat-4o",
                "endpoint": upstream or emulator_server.url,
                "api_key": EMULATOR_KEY,
            },
            {"model": "text-embedding-3-small", "endpoint": emulator_server.url, "api_key": EMULATOR_KEY},
        ]
        settings = {"usage_flush_seconds": 0.05, **overrides.pop("access", {})}
        return start_gateway(
            access_log=AccessLog(log, interval=0.01),
            auth="keys",
            data_dir=str(tmp_path),
            deployments=deployments,
            admin={"master_key": MASTER},
            access=settings,
            **overrides,
        )

    db = await connect_database(f"sqlite:///{tmp_path / 'gateway.db'}")
    await migrate(db)
    yield start, Keys(KeyStore(db)), db, log
    await db.close()

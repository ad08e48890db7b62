"""Admin sessions kept in the gateway's database: a restart (or another worker) keeps them, sign-out ends them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from aoai_gateway.app import create_app
from aoai_gateway.config import Settings

from ..conftest import EMULATOR_KEY, gateway_settings
from ..keyed import MASTER
from ..servers import AsgiServer
from .conftest import csrf_of

SESSION = "aoai_console_session"


def _settings(upstream: str, tmp_path: Path, database_url: str) -> Settings:
    deployments = [{"model": "gpt-4o", "deployment": "chat", "endpoint": upstream, "api_key": EMULATOR_KEY}]
    overrides: dict[str, Any] = {
        "auth": "keys",
        "data_dir": str(tmp_path),
        "admin": {"master_key": MASTER},
        "deployments": deployments,
    }
    if database_url:  # else the SQLite file in data_dir
        overrides["database_url"] = database_url
    return gateway_settings(upstream, **overrides)


def _sign_in(url: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as client:
        token = csrf_of(client.get("/console/sign-in"))
        answer = client.post("/console/sign-in", data={"csrf": token, "master_key": MASTER})
        assert answer.status_code == 303
        return client.cookies[SESSION]


def _admin_page(url: str, session: str) -> httpx.Response:
    return httpx.get(f"{url}/console/admin/keys", cookies={SESSION: session}, timeout=30)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_session_outlives_a_restart_and_sign_out_ends_it(
    backend: str, tmp_path: Path, emulator_server: AsgiServer, request: pytest.FixtureRequest
) -> None:
    database_url = "" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    settings = _settings(emulator_server.url, tmp_path, database_url)
    with AsgiServer(create_app(settings), settings.server) as first:
        session = _sign_in(first.url)
        assert _admin_page(first.url, session).status_code == 200
        # A second gateway on the same database (another worker) knows the session at once.
        with AsgiServer(create_app(settings), settings.server) as second:
            assert _admin_page(second.url, session).status_code == 200
    with AsgiServer(create_app(settings), settings.server) as restarted:
        assert _admin_page(restarted.url, session).status_code == 200  # still signed in after the restart
        with httpx.Client(base_url=restarted.url, cookies={SESSION: session}, timeout=30) as client:
            token = csrf_of(client.get("/console/admin/keys"))
            assert client.post("/console/sign-out", data={}).status_code == 403  # no CSRF token: refused
            assert client.get("/console/admin/keys").status_code == 200
            assert client.post("/console/sign-out", data={"csrf": token}).status_code == 303
        # The cookie replayed after sign-out names nothing: the row is gone, not just the browser's cookie.
        refused = _admin_page(restarted.url, session)
        assert refused.status_code == 303 and refused.headers["location"] == "/console/sign-in"
        forged = _admin_page(restarted.url, "x" * 43)
        assert forged.status_code == 303

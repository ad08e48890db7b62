"""A fake Microsoft Entra ID for tests: the v2 token endpoint, App Service's managed identity endpoint, `az`.

endpoint = TokenEndpoint(expires_in=3600)
with AsgiServer(endpoint, ssl_certfile=..., ssl_keyfile=...) as server: ...   # authority_host: https://127.0.0.1:P
endpoint.requests[-1].form["scope"]          # what a credential asked for
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from .servers import lifespan_done, whole_body

MSI_HEADER = "test-identity-header-secret"


@dataclass
class TokenRequest:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class TokenEndpoint:
    """Answers every token request with `tok-N` (N counts requests) valid for `expires_in`; `fail` answers 400."""

    expires_in: int = 3600
    fail: bool = False
    delay: float = 0.0
    requests: list[TokenRequest] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await lifespan_done(scope, receive, send):
            return
        body = await whole_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        seen = TokenRequest(
            scope["method"],
            scope["path"],
            dict(parse_qsl(scope["query_string"].decode())),
            dict(parse_qsl(body.decode())),
            headers,
        )
        self.requests.append(seen)
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        number = len(self.requests)
        if self.fail:
            status, answer = 400, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client."}
        elif scope["path"].startswith("/msi/"):
            if headers.get("x-identity-header") != MSI_HEADER:
                status, answer = 401, {"error": "no header"}
            else:
                status, answer = (
                    200,
                    {
                        "access_token": f"tok-{number}",
                        "expires_on": str(int(time.time()) + self.expires_in),
                        "resource": seen.query.get("resource", ""),
                        "token_type": "Bearer",
                    },
                )
        else:
            status, answer = (
                200,
                {"token_type": "Bearer", "expires_in": self.expires_in, "access_token": f"tok-{number}"},
            )
        reply = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(reply)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": reply})


def fake_az(directory: Path, *, expires_in: int = 3600, fail: bool = False) -> Path:
    """An `az` on PATH (prepend `directory`) answering `account get-access-token`; each call appends its args
    to `directory/calls.log`."""
    script = directory / "az"
    log = directory / "calls.log"
    answer = (
        "sys.stderr.write('ERROR: AADSTS50076: MFA required\\n'); sys.exit(1)"
        if fail
        else (
            "print(json.dumps({'accessToken': f'cli-tok-{n}', 'expires_on': int(time.time()) + "
            f"{expires_in}, 'tokenType': 'Bearer'}}))"
        )
    )
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys, time\n"
        f"log = {str(log)!r}\n"
        "with open(log, 'a') as f: f.write(' '.join(sys.argv[1:]) + '\\n')\n"
        "n = sum(1 for _ in open(log))\n"
        f"{answer}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def path_with(directory: Path) -> str:
    return f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"

"""HTTP webhook tools declared in the config: the model's arguments become a request to a URL.

    tools = webhook_tools(settings.assistant.webhooks, http, os.environ)   # headers' values read once, here
    await tools[0].run({"room": "kitchen"})    # POST url with {"room": "kitchen"} -> the answer's JSON (or text)

GET and DELETE send the arguments as the query string (objects and arrays as JSON), the other methods as a JSON
body. The configured headers carry secrets from environment variables, never from the model. An answer of 4xx or
5xx, a connection failure or an answer over 1 MiB is a `ToolFailure` that tells the model what happened; the
registry's timeout (`timeout_s`) bounds the whole exchange. Redirects are not followed: a webhook says where it
is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from ..config import ConfigError
from ..config.assistant import WebhookToolSettings
from .tools import Tool, ToolFailure, ToolSpec

__all__ = ["WebhookTool", "webhook_tools"]

MAX_ANSWER_BYTES = 1024 * 1024
_QUERY_METHODS = ("GET", "DELETE")


@dataclass(frozen=True, slots=True)
class WebhookTool:
    spec: ToolSpec
    url: str
    method: str
    headers: dict[str, str]
    http: aiohttp.ClientSession

    async def run(self, arguments: dict[str, Any]) -> Any:
        options: dict[str, Any] = {"headers": self.headers, "allow_redirects": False}
        if self.method in _QUERY_METHODS:
            options["params"] = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in arguments.items()}
        else:
            options["data"] = orjson.dumps(arguments)
            options["headers"] = {**self.headers, "content-type": "application/json"}
        try:
            async with self.http.request(self.method, self.url, **options) as answer:
                body = await answer.content.read(MAX_ANSWER_BYTES + 1)
                status, content_type = answer.status, answer.headers.get("content-type", "")
        except aiohttp.ClientError as exc:
            raise ToolFailure(f"The service could not be reached ({type(exc).__name__}).") from None
        if len(body) > MAX_ANSWER_BYTES:
            raise ToolFailure("The service answered with more than 1 MiB.")
        if status >= 400:
            raise ToolFailure(f"The service answered HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
        if not body:
            return {"status": status}
        if "json" in content_type:
            try:
                return orjson.loads(body)
            except orjson.JSONDecodeError:
                raise ToolFailure("The service answered with JSON it could not parse.") from None
        return body.decode("utf-8", "replace")


def webhook_tools(
    hooks: Sequence[WebhookToolSettings], http: aiohttp.ClientSession, env: Mapping[str, str]
) -> list[Tool]:
    tools: list[Tool] = []
    for hook in hooks:
        headers: dict[str, str] = {}
        for header, variable in hook.headers_from_env.items():
            value = env.get(variable)
            if value is None:
                raise ConfigError(
                    f"assistant webhook {hook.name!r}: header {header} comes from ${variable}, which is not set"
                )
            headers[header] = value
        spec = ToolSpec(
            hook.name,
            hook.description,
            hook.parameters,
            source="webhook",
            confirm=hook.confirm,
            timeout_s=hook.timeout_s,
        )
        tools.append(WebhookTool(spec, hook.url, hook.method, headers, http))
    return tools

"""The floor of the gateway's stack: a raw ASGI pass-through on the same server and upstream client, nothing else.

    python bench/_bare_proxy.py --port 9200 --upstream nginx=http://127.0.0.1:9100 --upstream paced=http://...
    POST /nginx/prefix/openai/...?api-version=...   ->   POST http://127.0.0.1:9100/prefix/openai/...?api-version=...

uvicorn with httptools and uvloop, as the gateway runs it; one ASGI callable that reads the request body, sends it
with the gateway's own upstream client (`--client`; by default the gateway's default `upstream.client`, read from
`UpstreamSettings()` at run time) and relays the status, the headers (hop-by-hop ones dropped) and the body: read
whole when the upstream gave a length and it is not an event stream, chunk by chunk otherwise. The gateway's
routing, authentication, header rules, usage accounting, access log, metrics and connection guard are all absent,
so the benchmark's "x bare proxy" ratio is what they cost on top of the server and the client themselves.
"""

from __future__ import annotations

import argparse
import resource
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from aoai_gateway.config import UpstreamSettings
from aoai_gateway.upstream import UpstreamClient, UpstreamRequest, create_upstream_client

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_DROP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length"}
_UPSTREAM_HEADERS = [("content-type", "application/json"), ("api-key", "upstream-key")]


class BareProxy:
    """`uvicorn.run(BareProxy({"nginx": "http://127.0.0.1:9100"}, UpstreamSettings()), ...)`"""

    def __init__(self, upstreams: dict[str, str], settings: UpstreamSettings) -> None:
        self.upstreams = upstreams
        self.settings = settings
        self.client: UpstreamClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._forward(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.client = create_upstream_client(self.settings)  # inside the running loop, as the gateway does
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.client is not None:
                    await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.client is not None
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        name, _, rest = scope["path"][1:].partition("/")
        query = scope["query_string"].decode("latin-1")
        url = f"{self.upstreams[name]}/{rest}" + (f"?{query}" if query else "")
        request = UpstreamRequest(scope["method"], url, list(_UPSTREAM_HEADERS), body)
        try:
            response = await self.client.send(request, stream=True)
        except Exception as exc:  # the floor has no failover: say what broke
            await _answer(send, 502, str(exc).encode())
            return
        try:
            headers = [(k.lower(), v) for k, v in response.raw_headers if k.lower() not in _DROP]
            length = next((v for k, v in response.raw_headers if k.lower() == b"content-length"), None)
            event_stream = any(k == b"content-type" and v.startswith(b"text/event-stream") for k, v in headers)
            if length is not None and not event_stream:
                data = await response.read()
                headers.append((b"content-length", str(len(data)).encode()))
                await send({"type": "http.response.start", "status": response.status, "headers": headers})
                await send({"type": "http.response.body", "body": data})
                return
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            async for chunk in response.iter_chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.release()


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--upstream", action="append", required=True, metavar="NAME=URL", help="/NAME/... goes to URL/..."
    )
    parser.add_argument("--client", default=UpstreamSettings().client, help="an `upstream.client` name")
    parser.add_argument("--max-connections", type=int, default=10_000, help="the upstream pool's size")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    upstreams = dict(item.split("=", 1) for item in args.upstream)
    settings = UpstreamSettings(client=args.client, max_connections=args.max_connections)
    uvicorn.run(
        BareProxy(upstreams, settings),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        backlog=4096,
        server_header=False,
        date_header=True,
    )


if __name__ == "__main__":
    main()

"""Drive the gateway app in-process (no HTTP server, no client): N chat requests at 16 at a time, against nginx.

    python bench/_inprocess.py --port 18099 --requests 2000 [--warm 20] [--stream]

Prints the process CPU time per request. Each request carries the `ServerHooks` the gateway's own server
protocol gives it (disconnect callback, synchronous body writes), where the checkout has them.
`hotpath_bench.py` runs it under callgrind for an exact instruction count per request; the server (uvicorn) and
the client (wrk) are left out, so what differs between two checkouts of the gateway is the gateway's own code and
its upstream client.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from typing import Any

from aoai_gateway.app import create_app
from aoai_gateway.config import Settings
from aoai_gateway.logs import AccessLog

CONCURRENCY = 16


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        return None


async def _run(port: int, requests: int, warm: int, stream: bool, client: str | None) -> float:
    try:  # checkouts before the server hooks have none: their requests run as they did under uvicorn then
        from aoai_gateway.http.asgi import SERVER_HOOKS as server_hooks
        from aoai_gateway.http.asgi import ServerHooks as hooks_type
    except ImportError:
        server_hooks, hooks_type = "", None

    path = "stream" if stream else "prefix"
    settings = Settings.model_validate(
        {
            "deployments": [
                {"model": "gpt-4o", "deployment": "dep1", "endpoint": f"http://127.0.0.1:{port}/{path}", "api_key": "k"}
            ],
            "upstream": {"client": client} if client else {},
        }
    )
    app = create_app(settings, access_log=AccessLog(_Discard()))  # the access log stays on, as deployed
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan.put_nowait({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def lifespan_send(message: dict[str, Any]) -> None:
        started.set()

    life = asyncio.create_task(app({"type": "lifespan"}, lifespan.get, lifespan_send))
    await started.wait()
    body = json.dumps(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16, "stream": stream},
        separators=(",", ":"),
    ).encode()
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", b"Bearer client-key"),
        (b"user-agent", b"bench"),
    ]

    async def one() -> None:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "query_string": b"",
            "headers": list(headers),
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8080),
            "scheme": "http",
            "http_version": "1.1",
            "asgi": {"version": "3.0"},
        }
        pending = [{"type": "http.request", "body": body, "more_body": False}]
        done = asyncio.Event()
        if hooks_type is not None:  # what the gateway's own server protocol gives each request (http/protocol.py)
            scope["extensions"] = {server_hooks: hooks_type(lambda chunk: True)}

        async def receive() -> dict[str, Any]:
            if pending:
                return pending.pop()
            await done.wait()
            return {"type": "http.disconnect"}

        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif not message.get("more_body"):
                done.set()

        await app(scope, receive, send)
        if status != [200]:
            raise RuntimeError(f"the gateway answered {status}")

    async def worker(count: int) -> None:
        for _ in range(count):
            await one()

    await asyncio.gather(*(worker(warm) for _ in range(CONCURRENCY)))
    gc.collect()
    before = time.process_time()
    await asyncio.gather(*(worker(requests // CONCURRENCY) for _ in range(CONCURRENCY)))
    cpu = time.process_time() - before
    lifespan.put_nowait({"type": "lifespan.shutdown"})
    await life
    return cpu / (requests // CONCURRENCY * CONCURRENCY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True, help="nginx upstream port (bench/_nginx.py)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warm", type=int, default=20, help="requests per worker before measuring")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--client", help="upstream.client (default: the checkout's own default)")
    args = parser.parse_args()
    import uvloop

    seconds = uvloop.run(_run(args.port, args.requests, args.warm, args.stream, args.client))
    print(f"{seconds * 1e6:.1f} us CPU per request")


if __name__ == "__main__":
    main()

"""The console's page process: read-only console pages at the lowest CPU priority (the other side of relay.py).

    python -m aoai_gateway.console.worker      # started by the gateway (PageProcess), never by hand

Reads the gateway's settings and the relay secret from stdin (a 4-byte length, then the pickle), lowers its own
priority to nice 19, opens what the pages read (the database, the calls archive: `open_console_pages` in
factory.py), listens on an ephemeral loopback port and writes that port as one line to stdout once it serves.
Every request must carry the secret (`x-aoai-console-relay`), else 403; with it, the browser's scheme, `Host` and
address come from the `x-forwarded-*` headers the gateway wrote. The end of stdin (the gateway closed it, or died)
stops the process.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import pickle
import socket
import struct
import threading
from contextlib import AsyncExitStack

from ..config import Settings
from ..errors import GatewayError, PermissionDenied
from ..http.asgi import Receive, Scope, Send
from ..http.paths import Router
from ..http.request import ClientDisconnected, Request
from ..http.responses import send_error
from .relay import RELAY_HEADER

log = logging.getLogger("aoai_gateway.console")

_RELAY = RELAY_HEADER.encode("latin-1")
_REWRITTEN = frozenset({_RELAY, b"host", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-for"})


class PageWorkerApp:
    """The ASGI app of the page process: the console's routes, behind the relay's secret."""

    def __init__(self, settings: Settings, secret: str) -> None:
        self.settings = settings
        self.secret = secret.encode("latin-1")
        self.router: Router | None = None
        self._stack = AsyncExitStack()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers: dict[bytes, bytes] = {}
        kept = []
        for name, value in scope["headers"]:
            lower = name.lower()
            if lower in _REWRITTEN:
                headers.setdefault(lower, value)
            else:
                kept.append((lower, value))
        if not hmac.compare_digest(headers.get(_RELAY, b""), self.secret) or self.router is None:
            await send_error(send, PermissionDenied("This port serves the gateway's console relay only."))
            return
        kept.append((b"host", headers.get(b"x-forwarded-host", b"localhost")))
        forwarded = dict(scope)
        forwarded["headers"] = kept
        forwarded["scheme"] = "https" if headers.get(b"x-forwarded-proto") == b"https" else "http"
        address = headers.get(b"x-forwarded-for")
        forwarded["client"] = (address.decode("latin-1"), 0) if address else None
        request = Request(forwarded, receive)
        try:
            route, params = self.router.match(request.method, request.path)
            await route.handler(request, send, params)
        except GatewayError as exc:
            await send_error(send, exc)
        except ClientDisconnected:
            pass

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        from ..factory import open_console_pages

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.router = await self._stack.enter_async_context(open_console_pages(self.settings))
                except Exception as exc:
                    log.exception("the console's page process could not start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stack.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        piece = os.read(fd, size - len(data))
        if not piece:
            raise SystemExit("the gateway closed the page process's stdin before sending its settings")
        data += piece
    return data


def _lowest_priority() -> None:
    """Nice 19 (the smallest CPU share beside the proxy), and the batch policy: waking up to answer a page does
    not preempt the proxy's process mid-slice (fewer switches on a shared core, so fewer caches refilled)."""
    os.nice(19 - os.nice(0))
    batch = getattr(os, "SCHED_BATCH", None)  # Linux only
    if batch is not None:
        try:
            os.sched_setscheduler(0, batch, os.sched_param(0))
        except OSError:
            log.info("the page process could not take the batch scheduling policy; it runs at nice 19")


def main() -> None:
    _lowest_priority()
    (length,) = struct.unpack("!I", _read_exactly(0, 4))
    try:
        settings, secret = pickle.loads(_read_exactly(0, length))  # our parent wrote it, over a pipe
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise SystemExit(f"the page process could not read its settings: {type(exc).__name__}") from None
    if not isinstance(settings, Settings) or not isinstance(secret, str):
        raise SystemExit("the page process was given something other than settings and a secret")

    import uvicorn
    import uvloop

    from ..logs import configure_logging
    from ..server import uvicorn_options

    configure_logging(settings.logging)
    options = uvicorn_options(settings.server, settings.realtime)
    options.update(host="127.0.0.1", port=0, timeout_graceful_shutdown=5)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(PageWorkerApp(settings, secret), **options))

    async def serve() -> None:
        loop = asyncio.get_running_loop()

        def watch_stdin() -> None:  # the gateway holds our stdin open; its end is the gateway's end
            while os.read(0, 4096):
                pass
            loop.call_soon_threadsafe(setattr, server, "should_exit", True)

        threading.Thread(target=watch_stdin, name="gateway-watch", daemon=True).start()
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.05)
        if server.started:
            os.write(1, f"{port}\n".encode())
            os.dup2(2, 1)  # nothing more goes to the pipe the gateway read the port from
        await serving

    uvloop.run(serve())
    if not server.started:
        raise SystemExit(3)


if __name__ == "__main__":
    main()

"""The console's page process, seen from the gateway: started on first use, restarted when it ends, relayed to.

    process = PageProcess(settings)                 # nothing runs yet
    relay = PageRelay(process, client)              # client: an HTTP client for loopback (HttptoolsUpstream)
    router.add("/console/admin/usage", ["GET"], relay.forward)
    await relay.aclose()                            # stops the process with the gateway

With `console.process` (and `auth: keys`), the console's pages that only read (`Pages.reader`) are rendered by a
child process (`python -m aoai_gateway.console.worker`) at nice 19: the gateway's process forwards each such request
over loopback and copies the answer back, which costs it a fraction of a millisecond instead of the page's SQL and
rendering. When the proxy saturates its CPU, the kernel gives the pages only what the proxy leaves.

What crosses to the child, besides the path and a few headers: a per-start secret (`x-aoai-console-relay`; the child
refuses any request without it, so another local user cannot reach it directly) and what the child cannot see
from its loopback connection: the browser's scheme, `Host` and address (`x-forwarded-*`, trusted only beside the
secret). The settings go through the child's stdin once (pickled, as `server.workers` passes them to its
workers); the child treats the end of its stdin as the gateway's end and stops, so a killed gateway leaves no
orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import secrets
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from ..config import Settings
from ..errors import ConsoleUnavailable, GatewayError
from ..http.asgi import Send
from ..http.request import Request
from ..upstream import UpstreamClient, UpstreamRequest

log = logging.getLogger("aoai_gateway.console")

RELAY_HEADER = "x-aoai-console-relay"
# What the browser sent that a read-only page uses: its session and CSRF cookies, a recording's byte range, the
# ETag-style checks a browser makes for a range request. Nothing else crosses (no Authorization, no forwarding
# header of the client's own: the gateway writes those below).
_FORWARDED = frozenset({b"cookie", b"range", b"if-range", b"accept", b"accept-language", b"user-agent"})
# Hop-by-hop headers (RFC 9110 7.6.1) and what the gateway's own server writes again.
_DROPPED = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade", b"date"})
_FIRST_START_WAIT = 30.0  # how long a page waits for the process to be ready (an import of the gateway, a migration)
_BACKOFF = (0.5, 30.0)  # restart delay after an early end: doubles up to the second value; a long run resets it
_STEADY_SECONDS = 60.0
COMMAND = (sys.executable, "-m", "aoai_gateway.console.worker")


@dataclass(frozen=True, slots=True)
class Listening:
    port: int
    pid: int


class PageProcess:
    """The child that renders read-only console pages; `listening()` starts it on first use and waits for it."""

    def __init__(self, settings: Settings, *, start_wait: float | None = None) -> None:
        self.settings = settings
        self.secret = secrets.token_urlsafe(32)
        self.start_wait = _FIRST_START_WAIT if start_wait is None else start_wait
        self._ready: asyncio.Future[Listening] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._closing = False

    async def listening(self) -> Listening:
        """Where the process listens; starts it on the first call. `ConsoleUnavailable` when it is not up in time."""
        if self._closing:
            raise ConsoleUnavailable("the gateway is stopping")
        if self._supervisor is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._supervisor = asyncio.create_task(self._supervise(), name="console-page-process")
        assert self._ready is not None
        try:
            async with asyncio.timeout(self.start_wait):
                return await asyncio.shield(self._ready)
        except TimeoutError:
            raise ConsoleUnavailable(f"not ready after {self.start_wait:g} s", retry_after=5) from None

    async def _supervise(self) -> None:
        delay = _BACKOFF[0]
        while not self._closing:
            started = time.monotonic()
            returncode = await self._run_once()
            if self._closing:
                return
            delay = _BACKOFF[0] if time.monotonic() - started > _STEADY_SECONDS else min(delay * 2, _BACKOFF[1])
            log.warning("the console page process ended (exit status %s); starting again in %.1f s", returncode, delay)
            await asyncio.sleep(delay)

    async def _run_once(self) -> int | None:
        process = await asyncio.create_subprocess_exec(
            *COMMAND,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # Its log lines go where the gateway's go.
        )
        self._process = process
        assert process.stdin is not None and process.stdout is not None
        payload = pickle.dumps((self.settings, self.secret))
        try:
            process.stdin.write(struct.pack("!I", len(payload)) + payload)
            await process.stdin.drain()  # stdin stays open: its end tells the child the gateway is gone
            line = await process.stdout.readline()  # "<port>\n" once it serves; nothing when it failed to start
        except (ConnectionError, OSError):
            line = b""
        if line.strip().isdigit():
            where = Listening(int(line), process.pid)
            if self._ready is None or self._ready.done():
                self._ready = asyncio.get_running_loop().create_future()
            self._ready.set_result(where)
            log.info("the console's page process (pid %d) serves on 127.0.0.1:%d at nice 19", where.pid, where.port)
        returncode = await process.wait()
        process.stdin.close()
        if self._ready is not None and self._ready.done():
            self._ready = asyncio.get_running_loop().create_future()  # the next page waits for the next process
        return returncode

    async def aclose(self) -> None:
        self._closing = True
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if process is not None and process.stdin is not None:
            process.stdin.close()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._ready is not None and not self._ready.done():
            self._ready.cancel()


class PageRelay:
    """Forwards a console request to the page process and copies its answer back, as it comes.

    `before` runs first in the gateway (the usage ledger's flush): a report the child reads then holds the
    requests this process still buffered, as the pages did when they ran here (an empty buffer costs nothing)."""

    def __init__(
        self, process: PageProcess, client: UpstreamClient, before: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.process = process
        self.client = client
        self.before = before

    async def forward(self, request: Request, send: Send, params: dict[str, str]) -> None:
        where = await self.process.listening()
        if self.before is not None:
            await self.before()
        scope = request.scope
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k.lower() in _FORWARDED]
        client = scope.get("client")
        headers += [
            (RELAY_HEADER, self.process.secret),
            ("x-forwarded-proto", "https" if scope.get("scheme") in ("https", "wss") else "http"),
            ("x-forwarded-host", request.headers.get("host", "localhost")),
        ]
        if client:
            headers.append(("x-forwarded-for", str(client[0])))
        raw_path = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
        query = scope.get("query_string", b"")
        target = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        upstream = UpstreamRequest("GET", f"http://127.0.0.1:{where.port}{target}", headers)
        try:
            response = await self.client.send(upstream, stream=True)
        except GatewayError as exc:
            # The process ended between the check and the request (a restart): say so as any dependency would.
            raise ConsoleUnavailable(exc.message, retry_after=2) from exc
        try:
            out = [(k, v) for k, v in response.raw_headers if k.lower() not in _DROPPED]
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            async for chunk in response.iter_chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.release()

    async def aclose(self) -> None:
        await self.process.aclose()
        await self.client.aclose()


def relay_client(settings: Settings) -> UpstreamClient:
    """The gateway's own HTTP client for loopback: never through an egress proxy, a few connections."""
    from ..upstream.httptools_client import HttptoolsUpstream

    upstream = settings.upstream.model_copy(
        update={"http_proxy": None, "socks_proxy": None, "max_connections": 16, "client": "httptools"}
    )
    return HttptoolsUpstream(upstream)


__all__ = ["RELAY_HEADER", "PageProcess", "PageRelay", "relay_client"]

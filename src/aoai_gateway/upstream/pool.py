"""The upstream connection pool: at most `upstream.max_connections` over all upstreams, a bounded wait past it.

    pool = ConnectionPool(settings.upstream, make_connection, on_waiting=gauge.set)   # inside the event loop
    connection, pooled = await pool.acquire(("https", "res.openai.azure.com", 443))

Idle connections are kept per origin, newest first; one idle over `_STALE_IDLE` is checked for a close already in
the kernel before it is reused. A request finding every connection busy waits at most
`upstream.pool_wait_seconds` (`on_waiting` hears how many wait; a line is logged), then gets `UpstreamPoolFull`.
The protocol objects come from the factory the pool is given (httptools_client.py's `_Connection`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from ..config import UpstreamSettings
from ..errors import UpstreamPoolFull, UpstreamTimeout, UpstreamUnreachable
from .base import WaitingHook

log = logging.getLogger("aoai_gateway.upstream")

Origin = tuple[str, str, int]  # scheme, host, port
_WAIT_LOG_SECONDS = 10.0  # at most one "pool full" line this often
_STALE_IDLE = 1.0  # a pooled connection idle longer than this is checked for a pending close first


class PooledConnection(asyncio.Protocol):
    """What the pool needs of a connection's protocol object (httptools_client.py's `_Connection` is one)."""

    __slots__ = ()
    origin: Origin
    counted: bool  # in the pool's count of open connections
    idle_since: float
    transport: asyncio.Transport | None

    @property
    def reusable(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


C = TypeVar("C", bound=PooledConnection)


class ConnectionPool(Generic[C]):
    """Connections by origin, at most `limit` in all; requests past it wait their turn, for a bounded time."""

    def __init__(
        self,
        settings: UpstreamSettings,
        connection: Callable[[ConnectionPool[C], Origin], C],
        on_waiting: WaitingHook | None = None,
    ) -> None:
        self._connection = connection  # makes the protocol object of a new connection
        self.loop = asyncio.get_running_loop()
        self.limit = settings.max_connections
        self.wait_seconds = settings.pool_wait_seconds
        self.keepalive = settings.keepalive_seconds
        self.connect_timeout = settings.timeouts.connect
        self.idle: dict[Origin, list[C]] = {}
        self.open = 0  # connections open or being opened
        self.waiters: deque[asyncio.Future[None]] = deque()
        self._on_waiting = on_waiting
        self._logged = -_WAIT_LOG_SECONDS
        self._tls: ssl.SSLContext | None = None

    async def acquire(self, origin: Origin) -> tuple[C, bool]:
        """A connection to `origin` and whether it was pooled (not new)."""
        while True:
            idle = self.idle.get(origin)
            while idle:
                connection = idle.pop()
                stale = self.loop.time() - connection.idle_since > _STALE_IDLE
                # Idle long enough that the upstream may be closing it (uvicorn-based servers close after 5 s): a
                # close already in our kernel but not yet read by the loop is looked for before anything is written.
                if connection.reusable and not (stale and _closing(connection.transport)):
                    return connection, True
                self._uncount(connection)
                connection.close()
            if self.open < self.limit:
                self.open += 1
                try:
                    return await self._connect(origin), False
                except BaseException:
                    self.open -= 1
                    self._next_waiter()
                    raise
            if not self._evict_idle():
                await self._wait_turn()
            # Woken: a connection idles or a slot is free (another waiter may have been quicker: look again).

    def put(self, connection: C) -> None:
        # A woken waiter for this origin takes it; one for another origin closes an idle connection to connect.
        self.idle.setdefault(connection.origin, []).append(connection)
        self._next_waiter()

    def lost(self, connection: C) -> None:
        idle = self.idle.get(connection.origin)
        if idle and connection in idle:
            idle.remove(connection)
        self._uncount(connection)

    def _uncount(self, connection: C) -> None:
        if connection.counted:
            connection.counted = False
            self.open -= 1
            self._next_waiter()

    def _evict_idle(self) -> bool:
        """Close the oldest idle connection (to another origin) to make room at once; False when none idles."""
        for connections in self.idle.values():
            if connections:
                connection = connections.pop(0)
                self._uncount(connection)
                connection.close()
                return True
        return False

    async def _wait_turn(self) -> None:
        waiter = self.loop.create_future()
        self.waiters.append(waiter)
        self._report()
        now = self.loop.time()
        if now - self._logged >= _WAIT_LOG_SECONDS:
            self._logged = now
            log.warning(
                "upstream pool full: %d connections open (upstream.max_connections), %d requests waiting",
                self.open,
                len(self.waiters),
            )
        try:
            async with asyncio.timeout(self.wait_seconds):
                await waiter
        except TimeoutError:
            log.warning("a request waited %g s for an upstream connection and was refused", self.wait_seconds)
            raise UpstreamPoolFull(self.limit, self.wait_seconds) from None
        finally:
            if waiter in self.waiters:
                self.waiters.remove(waiter)
            self._report()

    def _next_waiter(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _report(self) -> None:
        if self._on_waiting is not None:
            self._on_waiting(len(self.waiters))

    async def _connect(self, origin: Origin) -> C:
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await self.loop.create_connection(
                    lambda: self._connection(self, origin), host, port, ssl=tls, server_hostname=host if tls else None
                )
        except TimeoutError:
            raise UpstreamTimeout(f"The upstream connection timed out after {self.connect_timeout:g} s.") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamUnreachable(f"The upstream connection failed: {type(exc).__name__}.") from exc
        return connection

    def close(self) -> None:
        for connections in self.idle.values():
            for connection in connections:
                connection.close()
        self.idle.clear()
        for waiter in self.waiters:
            if not waiter.done():
                waiter.cancel()


def _closing(transport: asyncio.Transport | None) -> bool:
    """True when the socket holds a FIN or stray bytes not yet read: an idle connection must hold nothing."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    try:
        with socket.fromfd(sock.fileno(), sock.family, sock.type) as probe:
            probe.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False  # nothing waiting: open and quiet
    except OSError:
        return True
    return True


__all__ = ["ConnectionPool", "Origin", "PooledConnection"]

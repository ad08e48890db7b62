"""Running the gateway under an ASGI server, chosen by name (`server.engine`) from a registry.

    serve(settings, config_path="config.yaml")                     # blocks until SIGTERM / Ctrl-C
    serve(settings, emulator_port=8081)                            # with the emulator in the same process

The listening socket is bound first, so a taken port is a one-line `ListenError` before anything else starts.
uvicorn (httptools + uvloop) is the default; granian is the measured alternative (bench/README.md). Either way
SIGTERM stops accepting, lets in-flight requests and streams finish for up to `server.drain_seconds`, then
closes; under uvicorn a log line then says how many were in flight, how many finished and how long it took.
`server.workers` > 1 runs that many processes on the one socket (workers.py; granian: its own workers).

Connection limits (`server.max_header_bytes` ... `server.max_connections`) are whole under uvicorn, through
`http/protocol.py`. Granian (2.8) has its own knobs for some of them, answering 431 with an empty body:
- `header_timeout_seconds` -> `http1_settings.header_read_timeout` (hyper's; it closes without a 408, and its
  timer also runs between keep-alive requests, so idle connections close after it too);
- `max_header_bytes` -> `http1_settings.max_buffer_size` (hyper's read buffer, at least 8 KiB);
- `max_headers`: hyper's fixed 100, not settable;
- `keepalive_timeout_seconds`: no setting (keep-alive is on/off); see `header_timeout_seconds`;
- `max_connections` -> `backpressure` (a cap on requests in flight: excess connections wait, no 503);
- `body_idle_timeout_seconds`: no equivalent.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import uvicorn

from .app import create_app
from .config import RealtimeSettings, ServerSettings, Settings, load_settings
from .extras import needs
from .heap import HeapPolicy
from .http.asgi import ASGIApp
from .http.protocol import guarded_protocol
from .logs import configure_logging
from .workers import STARTUP_FAILURE, run_workers

__all__ = ["SERVER_ENGINES", "ListenError", "bind_listener", "serve", "serve_socket", "uvicorn_options"]

_CONFIG_ENV = "AOAI_GATEWAY__CONFIG_PATH"
_SPARE_FILES = 64  # the database, logs, model files, the listening sockets
EMULATOR_HOST = "127.0.0.1"

log = logging.getLogger("aoai_gateway")


class ListenError(Exception):
    """The address cannot be listened on; the message says which and what to do."""


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port`, or a `ListenError` naming the address (port taken, bad host)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT after a restart is no conflict
        sock.bind((host, port))
        # Bursts of new connections (thousands of streams opening) wait here, not refused; the kernel caps the
        # backlog at net.core.somaxconn.
        sock.listen(65535)
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(
                f"cannot listen on {where}: the port is already in use (another aoai-gateway?); "
                "stop it, or choose another port with --port or LISTEN"
            ) from None
        raise ListenError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)  # worker processes accept from it
    return sock


def uvicorn_options(server: ServerSettings, realtime: RealtimeSettings | None = None) -> dict[str, Any]:
    """`uvicorn.Config(app, **uvicorn_options(settings.server, settings.realtime))`: the gateway's listener, limits
    included. WebSockets (realtime sessions) through the `websockets` library's sans-I/O protocol, client messages
    bounded by `realtime.max_frame_bytes`, uncompressed (audio does not compress, and deflate costs memory per
    session), pinged every 20 s so a vanished client is noticed."""
    realtime = realtime or RealtimeSettings()
    return {
        "host": server.host,
        "port": server.port,
        "loop": "uvloop",
        "http": guarded_protocol(server),
        "ws": "websockets-sansio",
        "ws_max_size": realtime.max_frame_bytes,
        "ws_per_message_deflate": False,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        "lifespan": "on",
        "backlog": 65535,  # as bind_listener's: uvicorn listens on the socket again with its own
        # No X-Forwarded-For / -Proto rewriting of the client's address (uvicorn trusts 127.0.0.1 by default): the
        # per-address limits count the connection's peer (SECURITY.md), and each request skips a middleware.
        "proxy_headers": False,
        "access_log": False,
        "log_config": None,
        "server_header": False,
        # The protocol applies the exact (float) keep-alive timeout; this is uvicorn's own record of it.
        "timeout_keep_alive": max(1, round(server.keepalive_timeout_seconds)),
        "timeout_graceful_shutdown": int(server.drain_seconds),
    }


class DrainingServer(uvicorn.Server):
    """uvicorn's server, saying at shutdown what it drained: requests in flight, finished, cut off, how long;
    with `forward_proxy` (settings and a bound socket) it also serves the CONNECT listener (forward_proxy/)."""

    def __init__(
        self,
        config: uvicorn.Config,
        forward_proxy: tuple[Settings, socket.socket] | None = None,
        heap: HeapPolicy | None = None,
    ) -> None:
        super().__init__(config)
        self._forward_proxy = forward_proxy
        self._forward_listener: asyncio.Server | None = None
        self._heap = heap

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # Listening before `started` is set; its connections wait for the app like the main port's do.
        if self._forward_proxy is not None:
            self._forward_listener = await self._open_forward_proxy(*self._forward_proxy)
        await super().startup(sockets)
        if self._heap is not None and not self.should_exit:  # start-up's objects are frozen from here on
            self._heap.start(asyncio.get_running_loop())

    async def _open_forward_proxy(self, settings: Settings, sock: socket.socket) -> asyncio.Server:
        with needs("forward-proxy", "forward_proxy.enabled"):
            from .forward_proxy.listener import ForwardProxy, open_ca, under_api_base

        config, state = self.config, self.server_state
        app = under_api_base(config.loaded_app, settings.api_base)

        def http() -> asyncio.Protocol:
            # A connection of the main port's own protocol (limits included), as uvicorn's startup makes them.
            protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=state, app_state=self.lifespan.state
            )
            protocol.app = app  # type: ignore[attr-defined]
            return protocol

        proxy = ForwardProxy(settings, open_ca(settings), http, lambda: len(state.connections))
        return await proxy.listen(sock)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._heap is not None:
            self._heap.stop()
        if self._forward_listener is not None:
            self._forward_listener.close()  # no new tunnels; open ones drain with the main port's connections
        in_flight = list(self.server_state.tasks)
        drain = self.config.timeout_graceful_shutdown or 0
        started = time.monotonic()
        # uvicorn cancels what is left 0.1 s after closing plus `drain` seconds; this looks just before it does.
        watch = asyncio.ensure_future(asyncio.wait(in_flight, timeout=drain + 0.05)) if in_flight else None
        await super().shutdown(sockets)
        left = len((await watch)[1]) if watch is not None else 0
        log.info(
            "drained: %d requests in flight at shutdown (streams included), %d finished, %d cut off after "
            "server.drain_seconds (%d s); stopped in %.2f s",
            len(in_flight),
            len(in_flight) - left,
            left,
            drain,
            time.monotonic() - started,
        )


def fit_open_files(settings: Settings) -> Settings:
    """Raise this process's open-file limit to its hard limit, and fit the connection caps into it: a stream holds
    two sockets (client and upstream). Caps left at their defaults shrink to half the limit each (said at info
    level); caps set in the config that do not fit are kept, with a warning."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    server, upstream = settings.server, settings.upstream
    if server.max_connections + upstream.max_connections + _SPARE_FILES <= soft:
        return settings
    explicit = "max_connections" in server.model_fields_set or "max_connections" in upstream.model_fields_set
    if explicit:
        log.warning(
            "server.max_connections (%d) + upstream.max_connections (%d) need more open files than the %d this "
            "process may open: past that, new connections fail. Lower them, or raise the limit (ulimit -n, "
            "LimitNOFILE)",
            server.max_connections,
            upstream.max_connections,
            soft,
        )
        return settings
    half = max(1, (soft - _SPARE_FILES) // 2)
    log.info("this process may open %d files: server.max_connections and upstream.max_connections are %d", soft, half)
    return settings.model_copy(
        update={
            "server": server.model_copy(update={"max_connections": half}),
            "upstream": upstream.model_copy(update={"max_connections": half}),
        }
    )


def serve_socket(settings: Settings, sock: socket.socket, proxy_sock: socket.socket | None = None) -> None:
    """One gateway process serving `sock` (and the forward proxy's `proxy_sock`) under uvicorn until SIGTERM; also
    each worker process's entry point."""
    configure_logging(settings.logging)  # a spawned worker starts with nothing configured
    settings = fit_open_files(settings)
    options = uvicorn_options(settings.server, settings.realtime)
    forward_proxy = (settings, proxy_sock) if proxy_sock is not None else None
    server = DrainingServer(uvicorn.Config(create_app(settings), **options), forward_proxy, HeapPolicy(settings.server))
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def _uvicorn(settings: Settings, config_path: str | None, sock: socket.socket) -> None:
    with ExitStack() as stack:
        proxy_sock = stack.enter_context(_forward_proxy_socket(settings)) if settings.forward_proxy.enabled else None
        if settings.server.workers > 1:
            run_workers(settings.server.workers, serve_socket, (settings, sock, proxy_sock))
        else:
            serve_socket(settings, sock, proxy_sock)


def _forward_proxy_socket(settings: Settings) -> socket.socket:
    """The forward proxy's bound socket; its CA is made here once (before any worker), and where it is said."""
    with needs("forward-proxy", "forward_proxy.enabled"):
        from .forward_proxy.listener import open_ca

    proxy = settings.forward_proxy
    sock = bind_listener(settings.server.host, proxy.port)
    ca = open_ca(settings)
    log.info(
        "forward proxy listening on http://%s:%d for CONNECT %s:443; clients trust its CA with "
        "SSL_CERT_FILE / REQUESTS_CA_BUNDLE / NODE_EXTRA_CA_CERTS=%s",
        settings.server.host,
        sock.getsockname()[1],
        ", ".join(proxy.hosts),
        ca.cert_path,
    )
    return sock


def _granian(settings: Settings, config_path: str | None, sock: socket.socket) -> None:
    if settings.forward_proxy.enabled:
        raise ListenError("forward_proxy.enabled needs server.engine: uvicorn (granian has no CONNECT listener)")
    with needs("granian", "server.engine: granian"):
        from granian import Granian
        from granian.http import HTTP1Settings

    server = settings.server
    sock.close()  # granian binds the address itself; the check that it is free has been made

    # Granian imports the app in its worker processes: hand the config path over, the environment carries the rest.
    if config_path:
        os.environ[_CONFIG_ENV] = config_path
    Granian(
        "aoai_gateway.server:granian_app",
        address=server.host,
        port=server.port,
        interface="asgi",  # type: ignore[arg-type]
        factory=True,
        workers=server.workers,
        loop="uvloop",  # type: ignore[arg-type]
        log_access=False,
        workers_kill_timeout=int(server.drain_seconds) or None,
        http1_settings=HTTP1Settings(
            header_read_timeout=max(1, round(server.header_timeout_seconds * 1000)),
            max_buffer_size=max(8192, server.max_header_bytes),
        ),
        backpressure=server.max_connections,
    ).serve()


def granian_app() -> ASGIApp:
    """Factory for granian's worker: reload the same settings there."""
    settings = load_settings(os.environ.get(_CONFIG_ENV))
    configure_logging(settings.logging)
    return create_app(settings)


SERVER_ENGINES: dict[str, Callable[[Settings, str | None, socket.socket], None]] = {
    "uvicorn": _uvicorn,
    "granian": _granian,
}


@contextmanager
def embedded_emulator(port: int) -> Iterator[str]:
    """The Azure OpenAI emulator (default settings) on 127.0.0.1:`port`, in a thread of this process.

    It stops when the gateway has stopped (after the drain: streams still in flight keep their upstream), and it
    cannot outlive the process the way a background `aoai-gateway emulator &` does.
    """
    from .emulator import EmulatorSettings
    from .emulator.server import build_server

    sock = bind_listener(EMULATOR_HOST, port)
    emulator = build_server(EmulatorSettings.load(None), EMULATOR_HOST, port, log_level="warning")
    thread = threading.Thread(target=emulator.run, kwargs={"sockets": [sock]}, name="emulator", daemon=True)
    thread.start()
    try:
        yield f"http://{EMULATOR_HOST}:{sock.getsockname()[1]}"
    finally:
        emulator.should_exit = True
        thread.join(10)
        sock.close()


def serve(settings: Settings, config_path: str | None = None, *, emulator_port: int | None = None) -> None:
    """Bind, say where, serve until SIGTERM; `emulator_port`: run the emulator alongside (`--with-emulator`)."""
    configure_logging(settings.logging)
    with ExitStack() as stack:
        emulator = stack.enter_context(embedded_emulator(emulator_port)) if emulator_port is not None else None
        sock = stack.enter_context(bind_listener(settings.server.host, settings.server.port))
        if emulator is not None:
            log.info("Azure OpenAI emulator running at %s (stops with the gateway)", emulator)
        log.info(
            "aoai-gateway listening on http://%s:%d%s with %d deployments (%s, %s, %d worker%s)",
            settings.server.host,
            sock.getsockname()[1],
            settings.api_base,
            len(settings.deployments),
            settings.server.engine,
            settings.upstream.client,
            settings.server.workers,
            "" if settings.server.workers == 1 else "s",
        )
        SERVER_ENGINES[settings.server.engine](settings, config_path, sock)

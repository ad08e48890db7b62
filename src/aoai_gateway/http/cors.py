"""CORS for browser clients: answers preflights and decorates every response, when enabled.

app = CorsMiddleware(app, settings.cors)
"""

from __future__ import annotations

from ..config import CorsSettings
from .asgi import ASGIApp, Message, RawHeaders, Receive, Scope, Send


class CorsMiddleware:
    def __init__(self, app: ASGIApp, settings: CorsSettings) -> None:
        self.app = app
        self.settings = settings
        self._any_origin = "*" in settings.allow_origins
        self._origins = frozenset(settings.allow_origins)
        self._preflight: RawHeaders = [
            (b"access-control-allow-methods", ", ".join(settings.allow_methods).encode()),
            (b"access-control-max-age", str(settings.max_age).encode()),
        ]
        self._exposed = ", ".join(settings.expose_headers).encode()

    def _origin_headers(self, origin: bytes) -> RawHeaders:
        # With credentials a wildcard is not allowed by browsers, so echo the origin instead.
        echo = not self._any_origin or self.settings.allow_credentials
        headers: RawHeaders = [(b"access-control-allow-origin", origin if echo else b"*")]
        if echo:
            headers.append((b"vary", b"Origin"))
        if self.settings.allow_credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    def _allowed(self, origin: bytes) -> bool:
        return self._any_origin or origin.decode("latin-1") in self._origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        if origin is None or not self._allowed(origin):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            requested = headers.get(b"access-control-request-headers", b"")
            allow_headers = (
                requested if "*" in self.settings.allow_headers else ", ".join(self.settings.allow_headers).encode()
            )
            response = [*self._origin_headers(origin), *self._preflight, (b"content-length", b"0")]
            if allow_headers:
                response.append((b"access-control-allow-headers", allow_headers))
            await send({"type": "http.response.start", "status": 204, "headers": response})
            await send({"type": "http.response.body", "body": b""})
            return

        extra = [*self._origin_headers(origin), (b"access-control-expose-headers", self._exposed)]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)

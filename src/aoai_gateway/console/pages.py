"""Rendering console pages: Jinja2 templates with autoescape, sent with the console's security headers.

    pages = Pages("/console", assets, api_base="/v1")
    router.add("/console/usage", ["GET"], pages.handler(show_usage))     # show_usage(visit, params) -> Html

    async def show_usage(visit: Visit, params: dict[str, str]) -> Html:
        return visit.html("usage.html", title="My usage")

Every string a template shows is escaped (autoescape; no template marks anything safe), so an attendee named
`<script>` is shown as text. A `GatewayError` raised by a page becomes an HTML error page with the error's status
and headers (Retry-After) in one place here, as OpenAI's JSON is rendered in one place for the API.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ..errors import ConsoleUnavailable, GatewayError, InvalidRequest, UnsupportedMediaType
from ..http.asgi import RawHeaders, Send
from ..http.paths import Handler
from ..http.request import Request
from ..http.responses import send_bytes
from ..store.database import console_reads
from .assets import Assets
from .security import CSRF_COOKIE, CSRF_FIELD, CsrfGuard, cookie_header, new_secret, page_headers, read_cookies
from .sessions import SESSION_COOKIE, Sessions

_FORM_LIMIT = 64 * 1024
_FORM_FIELDS = 32
_COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


@dataclass
class Html:
    """A console answer: a page, or (with `content_type`) a download such as a CSV export."""

    status: int
    body: bytes
    headers: RawHeaders = field(default_factory=list)
    no_store: bool = False
    content_type: bytes = b"text/html; charset=utf-8"


class Visit:
    """One browser request to the console: its cookies, its CSRF pair, and how to answer it."""

    def __init__(self, request: Request, pages: Pages, cookies: dict[str, str], signed_in: bool) -> None:
        self.request = request
        self.pages = pages
        self.cookies = cookies
        self.signed_in = signed_in  # an admin session the cookie names, checked before the page runs
        self.secure = request.scope.get("scheme") in ("https", "wss")
        existing = self.cookies.get(CSRF_COOKIE)
        self._fresh = existing is None or not _COOKIE_VALUE.match(existing)
        self.csrf_cookie = new_secret() if self._fresh or existing is None else existing
        self.csrf = pages.guard.token(self.csrf_cookie)
        self.extra_headers: RawHeaders = []

    @property
    def address(self) -> str | None:
        client = self.request.scope.get("client")
        return str(client[0]) if client else None

    @property
    def origin(self) -> str:
        """This gateway's origin as the browser reached it (for snippets): scheme and Host header."""
        scheme = "https" if self.secure else "http"
        host = self.request.headers.get("host", "localhost")
        return f"{scheme}://{host}"

    def set_cookie(self, name: str, value: str, max_age: int | None = None) -> None:
        self.extra_headers.append(
            cookie_header(name, value, path=self.pages.prefix, secure=self.secure, max_age=max_age)
        )

    def headers(self) -> RawHeaders:
        headers = list(self.extra_headers)
        if self._fresh:
            headers.append(cookie_header(CSRF_COOKIE, self.csrf_cookie, path=self.pages.prefix, secure=self.secure))
        return headers

    def html(self, template: str, status: int = 200, *, no_store: bool = False, **context: Any) -> Html:
        body = self.pages.render(template, csrf=self.csrf, **context)
        return Html(status, body, self.headers(), no_store)

    def redirect(self, path: str) -> Html:
        return Html(303, b"", [*self.headers(), (b"location", path.encode("utf-8"))])

    async def form(self) -> dict[str, str]:
        """The posted form (urlencoded, first value of each field), after its CSRF token was checked."""
        if self.request.content_type not in ("application/x-www-form-urlencoded", ""):  # none: an empty form
            raise UnsupportedMediaType(self.request.content_type or "none", "application/x-www-form-urlencoded")
        raw = await self.request.body(_FORM_LIMIT)
        try:
            pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, max_num_fields=_FORM_FIELDS)
        except (UnicodeDecodeError, ValueError):
            raise InvalidRequest("The form could not be read; reload the page and send it again.") from None
        form: dict[str, str] = {}
        for name, value in pairs:
            form.setdefault(name, value)
        self.pages.guard.check(None if self._fresh else self.csrf_cookie, form.get(CSRF_FIELD))
        return form


PageHandler = Callable[[Visit, dict[str, str]], Awaitable[Html]]


class Pages:
    def __init__(
        self,
        prefix: str,
        assets: Assets,
        guard: CsrfGuard,
        sessions: Sessions,
        relay: Handler | None = None,
        **globals_: Any,
    ) -> None:
        self.prefix = prefix
        self.assets = assets
        self.guard = guard
        self.sessions = sessions
        self.relay = relay  # with console.process: forwards a read-only page to the page process (relay.py)
        self.env = Environment(
            loader=PackageLoader("aoai_gateway.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(prefix=prefix, asset=lambda name: assets.url(prefix, name), **globals_)

    def render(self, template: str, **context: Any) -> bytes:
        return self.env.get_template(template).render(**context).encode("utf-8")

    async def visit(self, request: Request) -> Visit:
        """The visit of a route that answers other than with a page (a recording, a file), its session checked."""
        visit = Visit(request, self, read_cookies(request.headers.get("cookie", "")), signed_in=False)
        await self.sign_in(visit)
        return visit

    async def sign_in(self, visit: Visit) -> None:
        # Only a visit that brings a session cookie costs a session lookup (attendee pages bring none).
        session = visit.cookies.get(SESSION_COOKIE)
        visit.signed_in = await self.sessions.valid(session) if session else False

    def reader(self, page: PageHandler) -> Handler:
        """The route handler of a page that only reads (a GET): relayed to the page process where there is one,
        else rendered here as `handler` does."""
        return self._relayed if self.relay is not None else self.handler(page)

    def reader_route(self, route: Handler) -> Handler:
        """`reader` for a route handler that answers other than with a page (a recording)."""
        return self._relayed if self.relay is not None else route

    async def _relayed(self, request: Request, send: Send, params: dict[str, str]) -> None:
        assert self.relay is not None
        try:
            await self.relay(request, send, params)
        except ConsoleUnavailable as exc:  # raised before anything was sent: the error page, as any page's
            visit = Visit(request, self, read_cookies(request.headers.get("cookie", "")), signed_in=False)
            await send_html(send, self.error_page(visit, exc))

    def handler(self, page: PageHandler) -> Handler:
        """A route handler that runs `page` and sends its Html, or the error page of a `GatewayError`."""

        async def handle(request: Request, send: Send, params: dict[str, str]) -> None:
            visit = Visit(request, self, read_cookies(request.headers.get("cookie", "")), signed_in=False)
            try:
                # Everything a page reads runs on the database's low-priority readers: a page can wait a little,
                # the proxy's requests on the same core should not.
                with console_reads():
                    await self.sign_in(visit)  # a database that cannot answer is an error page like any other
                    html = await page(visit, params)
            except GatewayError as exc:
                html = self.error_page(visit, exc)
            await send_html(send, html)

        return handle

    def error_page(self, visit: Visit, exc: GatewayError) -> Html:
        body = self.render("error.html", title=_TITLES.get(exc.status, "Error"), error=exc, csrf=visit.csrf)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
        return Html(exc.status, body, [*visit.headers(), *headers])


_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Refused",
    404: "Not found",
    429: "Too many attempts",
    503: "Not available right now",
}


async def send_html(send: Send, html: Html) -> None:
    headers = [(b"content-type", html.content_type), *page_headers(no_store=html.no_store), *html.headers]
    await send_bytes(send, html.status, html.body, headers)

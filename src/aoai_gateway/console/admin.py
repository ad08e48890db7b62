"""Admin sign-in with the master key, the signed-in home page, and sign-out.

    GET  {prefix}/sign-in     the form             POST {prefix}/sign-in    the master key -> a session cookie
    GET  {prefix}/admin       events, their registration links, the form for a new one (signed in; else a
                              redirect to sign-in; the event pages are in console/events.py)
    POST {prefix}/sign-out    ends the session

The master key is checked once, in constant time, and never stored in the browser: the session cookie names a
server-side session (console/sessions.py) that expires after `console.session_minutes`. Attempts are counted
per client address before the key is compared, so guessing is bounded whatever the answer.
"""

from __future__ import annotations

import hmac

from ..access.runtime import ManagedAccess
from ..config import Settings
from ..errors import AuthenticationError, GatewayError, InvalidRequest, NotFound
from ..http.paths import Router
from .pages import Html, Pages, Visit
from .sessions import SESSION_COOKIE, SignInThrottle

EVENTS_PAGE = 50


def page_offset(value: str) -> int:
    """A page's `offset` query parameter; `InvalidRequest` naming it unless a whole number."""
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise InvalidRequest(f"offset must be a whole number; got {value[:40]!r}.", param="offset")
    return int(value)


class AdminPages:
    def __init__(self, pages: Pages, settings: Settings, managed: ManagedAccess | None) -> None:
        self.pages = pages
        self.models = list(settings.models())
        self.master_key = settings.admin.master_key.get_secret_value() if settings.admin.master_key else None
        self.ttl = int(settings.console.session_minutes * 60)
        self.sessions = pages.sessions
        self.throttle = SignInThrottle(settings.console.sign_in_attempts)
        self.managed = managed

    def signed_in(self, visit: Visit) -> bool:
        return visit.signed_in

    def require(self, visit: Visit) -> None:
        """For posts: 401 unless signed in (pages redirect to the sign-in form instead)."""
        if not self.signed_in(visit):
            raise AuthenticationError("Sign in with the master key first; your session may have expired.")

    def store(self) -> ManagedAccess:
        if self.managed is None:
            raise NotFound("Keys, events and usage need `auth: keys` in the gateway's configuration.")
        return self.managed

    async def sign_in_form(self, visit: Visit, params: dict[str, str]) -> Html:
        if self.signed_in(visit):
            return visit.redirect(f"{self.pages.prefix}/admin")
        return visit.html("sign_in.html", title="Sign in", error=None, enabled=self.master_key is not None)

    async def sign_in(self, visit: Visit, params: dict[str, str]) -> Html:
        form = await visit.form()
        try:
            self.throttle.admit(visit.address)
            given = form.get("master_key", "")
            if self.master_key is None or not hmac.compare_digest(given.encode(), self.master_key.encode()):
                raise AuthenticationError("That is not the gateway's master key.", param="master_key")
        except GatewayError as exc:
            page = visit.html(
                "sign_in.html", exc.status, title="Sign in", error=exc, enabled=self.master_key is not None
            )
            page.headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
            return page
        self.throttle.refund(visit.address)
        await self.sessions.close(visit.cookies.get(SESSION_COOKIE))  # a fresh id at every sign-in (no fixation)
        visit.set_cookie(SESSION_COOKIE, await self.sessions.open(), max_age=self.ttl)
        return visit.redirect(f"{self.pages.prefix}/admin")

    async def sign_out(self, visit: Visit, params: dict[str, str]) -> Html:
        await visit.form()
        await self.sessions.close(visit.cookies.get(SESSION_COOKIE))
        visit.set_cookie(SESSION_COOKIE, "", max_age=0)
        return visit.redirect(f"{self.pages.prefix}/sign-in")

    async def home(self, visit: Visit, params: dict[str, str]) -> Html:
        if not self.signed_in(visit):
            return visit.redirect(f"{self.pages.prefix}/sign-in")
        return await self.home_page(visit)

    async def home_page(
        self, visit: Visit, status: int = 200, error: GatewayError | None = None, form: dict[str, str] | None = None
    ) -> Html:
        """A page of events (`?offset=N`, by start) and the form that creates one (shown again with `error`)."""
        offset = page_offset(dict(visit.request.query).get("offset", "0"))
        events, more = None, False
        if self.managed is not None:
            found = await self.managed.events.page(limit=EVENTS_PAGE + 1, offset=offset)
            events, more = found[:EVENTS_PAGE], len(found) > EVENTS_PAGE
        return visit.html(
            "admin.html",
            status,
            title="Admin",
            events=events,
            offset=offset,
            page=EVENTS_PAGE,
            has_more=more,
            origin=visit.origin,
            error=error,
            form=form or {},
            models=self.models,
        )


def register_routes(router: Router, pages: Pages, admin: AdminPages) -> None:
    prefix = pages.prefix
    form, post = pages.handler(admin.sign_in_form), pages.handler(admin.sign_in)
    router.add(f"{prefix}/sign-in", ["GET", "POST"], lambda r, s, p: (post if r.method == "POST" else form)(r, s, p))
    router.add(f"{prefix}/sign-out", ["POST"], pages.handler(admin.sign_out))
    router.add(f"{prefix}/admin", ["GET"], pages.reader(admin.home))

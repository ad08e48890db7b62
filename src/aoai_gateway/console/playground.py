"""The playground: chat with streaming, speech to text, text to speech, from the browser with a gateway key.

    GET  {prefix}/playground          the page; the attendee pastes a key
    POST {prefix}/playground/key      signed-in admins: a key for this session (all models, expires with it)

The page is static: its script (static/playground.js) calls the gateway's own OpenAI routes with the key (kept
in the tab's sessionStorage, never sent to the console itself): GET /v1/models for the models the key may use,
POST /v1/chat/completions with `stream: true` read as it arrives, /v1/audio/transcriptions with an uploaded file
or a microphone recording, /v1/audio/speech played back. Refusals show the gateway's message and the Retry-After.

An admin holds the master key, which is no gateway key in `auth: keys` mode: the session's key is an ordinary
one, named for it, that expires when the session does, so everything it does is in the ledger like any key's.
"""

from __future__ import annotations

import time

from ..errors import AuthenticationError, NotFound
from ..http.paths import Router
from ..store.keys import KeySpec
from .admin import AdminPages
from .pages import Html, Pages, Visit

SESSION_KEY_NAME = "console playground (admin session)"


class PlaygroundPages:
    def __init__(self, pages: Pages, admin: AdminPages) -> None:
        self.pages = pages
        self.admin = admin

    async def page(self, visit: Visit, params: dict[str, str]) -> Html:
        return visit.html(
            "playground.html",
            title="Playground",
            admin=self.admin.signed_in(visit),
            keys_mode=self.admin.managed is not None,
            session_key=None,
        )

    async def session_key(self, visit: Visit, params: dict[str, str]) -> Html:
        secret = await session_key(visit, self.admin)
        return visit.html(
            "playground.html",
            no_store=True,
            title="Playground",
            admin=True,
            keys_mode=True,
            session_key=secret,
        )


async def session_key(visit: Visit, admin: AdminPages, name: str = SESSION_KEY_NAME) -> str:
    """A posted form's key for the signed-in admin's session: an ordinary key that expires with the session."""
    await visit.form()
    if not admin.signed_in(visit):
        raise AuthenticationError("Sign in with the master key first.")
    managed = admin.managed
    if managed is None:
        raise NotFound("Gateway keys need `auth: keys`; without it, paste an upstream key instead.")
    _, secret = await managed.keys.create(KeySpec(name, expires_at=time.time() + admin.ttl))
    return secret


def register_routes(router: Router, pages: Pages, playground: PlaygroundPages) -> None:
    router.add(f"{pages.prefix}/playground", ["GET"], pages.handler(playground.page))
    router.add(f"{pages.prefix}/playground/key", ["POST"], pages.handler(playground.session_key))

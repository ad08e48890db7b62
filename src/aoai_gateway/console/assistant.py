"""The voice assistant's console page: push-to-talk from the browser, each stage of a turn shown as it happens.

    GET  {prefix}/assistant          the page; a gateway key is pasted (or comes from the playground's tab)
    POST {prefix}/assistant/key      signed-in admins: a key for this session (all models and tools)

Like the playground, the page is static and its script (static/assistant.js) calls the gateway's own API with the
key, kept in the tab's sessionStorage: /v1/assistant/sessions for a conversation, `/turns` with `stream: true`
and `speech: true` read as server-sent events (transcript, tool calls and results, reply deltas, a confirmation
to answer, the reply's audio sentence by sentence, played as each arrives), /v1/assistant/home for the simulated
home's state. The microphone is recorded with MediaRecorder while the talk button (or the space bar) is held.
Without `assistant.enabled` the page says how to switch it on.
"""

from __future__ import annotations

from ..config import Settings
from ..http.paths import Router
from .admin import AdminPages
from .pages import Html, Pages, Visit
from .playground import session_key

SESSION_KEY_NAME = "console assistant (admin session)"


class AssistantPages:
    def __init__(self, pages: Pages, admin: AdminPages, settings: Settings) -> None:
        self.pages = pages
        self.admin = admin
        self.enabled = settings.assistant.enabled
        self.speech = settings.assistant.speech_model is not None
        self.home = settings.assistant.home

    def _render(self, visit: Visit, secret: str | None) -> Html:
        return visit.html(
            "assistant.html",
            no_store=secret is not None,
            title="Voice assistant",
            admin=self.admin.signed_in(visit),
            keys_mode=self.admin.managed is not None,
            session_key=secret,
            enabled=self.enabled,
            speech=self.speech,
            home=self.home,
        )

    async def page(self, visit: Visit, params: dict[str, str]) -> Html:
        return self._render(visit, None)

    async def session_key(self, visit: Visit, params: dict[str, str]) -> Html:
        return self._render(visit, await session_key(visit, self.admin, SESSION_KEY_NAME))


def register_routes(router: Router, pages: Pages, assistant: AssistantPages) -> None:
    router.add(f"{pages.prefix}/assistant", ["GET"], pages.handler(assistant.page))
    router.add(f"{pages.prefix}/assistant/key", ["POST"], pages.handler(assistant.session_key))

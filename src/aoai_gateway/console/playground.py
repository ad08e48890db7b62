"""The playground: chat with streaming, speech to text, text to speech, from the browser with a gateway key.

    GET {prefix}/playground

The page is static: its script (static/playground.js) calls the gateway's own OpenAI routes with the key the
attendee pastes (kept in the tab's sessionStorage, never sent to the console itself): GET /v1/models for the
models the key may use, POST /v1/chat/completions with `stream: true` read as it arrives, /v1/audio/transcriptions
with an uploaded file, /v1/audio/speech played back. Refusals show the gateway's message and the Retry-After.
"""

from __future__ import annotations

from ..http.paths import Router
from .pages import Html, Pages, Visit


async def playground(visit: Visit, params: dict[str, str]) -> Html:
    return visit.html("playground.html", title="Playground")


def register_routes(router: Router, pages: Pages) -> None:
    router.add(f"{pages.prefix}/playground", ["GET"], pages.handler(playground))

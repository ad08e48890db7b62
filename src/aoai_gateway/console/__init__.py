"""The browser console, served by the gateway itself under `console.prefix` (default `/console`).

    add_console_routes(router, settings, managed, service.router)   # in routes/__init__.py, when enabled

Server-rendered Jinja2 pages with autoescape and a few small ES modules of our own; every file ships in the
package (console/templates, console/static), nothing comes from a CDN. One module per concept:
`security.py` (headers, CSP, CSRF), `sessions.py` (admin sessions, sign-in throttle), `pages.py` (rendering and
the per-request `Visit`), `assets.py` (static files), `snippets.py` (quick starts), `charts.py` (SVG bars), and
the pages themselves: `attendee.py`, `playground.py`, `assistant.py` (push-to-talk), `admin.py` (sign-in, the
events list), `events.py` (an event's organiser pages, its live view), `keys.py`, `reports.py` (usage),
`deployments.py` (live state), `calls.py` (the calls explorer: the pipeline's calls, one call with its recording,
charts, exports).
"""

from __future__ import annotations

from ..access.runtime import ManagedAccess
from ..balancing import DeploymentRouter
from ..config import Settings
from ..http.asgi import Send
from ..http.paths import Handler, Router
from ..http.request import Request
from ..http.responses import send_bytes
from . import admin, assistant, attendee, calls, deployments, events, keys, playground, reports
from .assets import Assets
from .pages import Html, Pages, Visit
from .security import CsrfGuard, page_headers
from .sessions import AdminSessions, Sessions, StoredSessions

__all__ = ["add_console_routes"]


def add_console_routes(
    router: Router,
    settings: Settings,
    managed: ManagedAccess | None,
    deployment_router: DeploymentRouter,
    archive: calls.CallArchive | None = None,
    relay: Handler | None = None,
) -> None:
    prefix = settings.console.prefix
    assets = Assets.load()
    master_key = settings.admin.master_key.get_secret_value() if settings.admin.master_key else None
    models = list(settings.models())
    ttl = settings.console.session_minutes * 60
    # With a database, sessions are rows every worker shares and a restart keeps; without one, in memory.
    sessions: Sessions = StoredSessions(managed.db, ttl) if managed is not None else AdminSessions(ttl)
    guard = CsrfGuard.for_master_key(master_key)
    pages = Pages(prefix, assets, guard, sessions, relay, api_base=settings.api_base)
    attendee.register_routes(
        router,
        pages,
        attendee.AttendeePages(pages, managed, models, settings.api_base, settings.access.registration_opens_days),
    )
    admin_pages = admin.AdminPages(pages, settings, managed)
    admin.register_routes(router, pages, admin_pages)
    playground.register_routes(router, pages, playground.PlaygroundPages(pages, admin_pages))
    assistant.register_routes(router, pages, assistant.AssistantPages(pages, admin_pages, settings))
    keys.register_routes(router, pages, keys.KeyPages(pages, admin_pages, models))
    events.register_routes(router, pages, events.EventPages(pages, admin_pages, models))
    deployments.register_routes(router, pages, deployments.DeploymentPages(pages, admin_pages, deployment_router))
    reports.register_routes(router, pages, reports.ReportPages(pages, admin_pages))
    calls.register_routes(router, pages, calls.CallPages(pages, admin_pages, archive))

    async def home(visit: Visit, params: dict[str, str]) -> Html:
        return visit.html("home.html", title="Console", keys_mode=managed is not None)

    router.add(prefix, ["GET"], pages.handler(home))
    router.add(f"{prefix}/", ["GET"], pages.handler(home))

    async def static(request: Request, send: Send, params: dict[str, str]) -> None:
        asset = assets.get(params["name"])
        if asset is None:
            await send_bytes(send, 404, b"not found", [(b"content-type", b"text/plain"), *page_headers()])
            return
        cache = b"public, max-age=86400" if dict(request.query).get("v") == asset.version else b"no-cache"
        headers = [(b"content-type", asset.content_type), (b"cache-control", cache), *page_headers()]
        await send_bytes(send, 200, asset.body, headers)

    router.add(f"{prefix}/static/{{name}}", ["GET"], static)

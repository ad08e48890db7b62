"""The deployments' live state (signed in): healthy, cooling down or an open circuit, latency, in flight.

    GET {prefix}/admin/deployments

The same snapshot as `GET /admin/deployments`, from the router's memory (no upstream call, no database): what this
process sees of each deployment now.
"""

from __future__ import annotations

import datetime as dt

from ..balancing import DeploymentRouter
from ..http.paths import Router
from .admin import AdminPages
from .pages import Html, Pages, Visit


class DeploymentPages:
    def __init__(self, pages: Pages, admin: AdminPages, router: DeploymentRouter) -> None:
        self.pages = pages
        self.admin = admin
        self.router = router

    async def page(self, visit: Visit, params: dict[str, str]) -> Html:
        if not self.admin.signed_in(visit):
            return visit.redirect(f"{self.pages.prefix}/sign-in")
        rows = self.router.snapshot()
        for row in rows:
            at = row["available_at"]
            row["available"] = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%H:%M:%S UTC") if at else ""
            row["outcomes_text"] = ", ".join(f"{k} {v}" for k, v in sorted(row["outcomes"].items())) or "none"
        return visit.html("deployments.html", title="Deployments", deployments=rows)


def register_routes(router: Router, pages: Pages, deployments: DeploymentPages) -> None:
    router.add(f"{pages.prefix}/admin/deployments", ["GET"], pages.handler(deployments.page))

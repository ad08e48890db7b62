"""Sticky routing for the Responses API: a call naming a stored response goes to the resource that stored it.

    affinity = ResponseAffinity(router, placements)          # placements None: nothing to remember
    group = await affinity.group_for(call, key_id)           # the one deployment that holds the id, or None
    await affinity.remember(response_id, deployment, key_id) # once a create answered

Only calls that carry a response id pay a lookup; an id the store does not know goes through normal routing
(the body's model, or the first deployment for a bare retrieve). In `auth: keys` an id is bound to the key that
created it: another key's id, or one the gateway never saw created, is a 404, as if it did not exist.
"""

from __future__ import annotations

import re

from ..api_call import Call
from ..config import Deployment
from ..errors import NotFound
from ..store.placements import ResponsePlacements
from .health import DeploymentHealth
from .router import DeploymentRouter


class ResponseAffinity:
    def __init__(self, router: DeploymentRouter, placements: ResponsePlacements | None, *, bind_keys: bool) -> None:
        self.router = router
        self.placements = placements
        self.bind_keys = bind_keys  # keys mode: each id belongs to the key that created it

    @property
    def enabled(self) -> bool:
        return self.placements is not None

    async def group_for(self, call: Call, key_id: str | None) -> list[DeploymentHealth] | None:
        """The deployment that stored `call.response_id` as a one-element group; None for normal routing."""
        response_id = call.response_id
        if response_id is None:
            return None
        placement = await self.placements.find(response_id) if self.placements is not None else None
        if self.bind_keys and (placement is None or placement.key_id != key_id):
            param = "previous_response_id" if call.document is not None else None
            raise NotFound(f"Response with id '{response_id}' not found.", param=param)
        if placement is not None:
            candidates = [h for h in self.router.deployments() if h.deployment.endpoint == placement.endpoint]
            same = [h for h in candidates if h.deployment.deployment == placement.deployment]
            if same or candidates:
                return (same or candidates)[:1]
        if not call.model:
            # A bare id the store does not know: the first deployment that speaks HTTP (one resource, usually).
            first = next((h for h in self.router.deployments() if h.deployment.endpoint), None)
            if first is None:
                raise NotFound(f"Response with id '{response_id}' not found.")
            return [first]
        return None

    async def remember(self, response_id: str, deployment: Deployment, key_id: str | None) -> None:
        if self.placements is not None:
            await self.placements.remember(response_id, deployment.endpoint, deployment.deployment, key_id)


class ResponseIdCapture:
    """Finds the new response's id at the start of a create's answer (JSON, or the `response.created` event).

    capture = ResponseIdCapture(affinity, deployment, key_id)
    done = await capture.feed(chunk)      # True once the id was found and remembered (or cannot be)
    """

    __slots__ = ("_affinity", "_deployment", "_key_id", "_seen")
    _LOOK = 65536  # an id comes in the first event; past this, stop looking

    def __init__(self, affinity: ResponseAffinity, deployment: Deployment, key_id: str | None) -> None:
        self._affinity, self._deployment, self._key_id = affinity, deployment, key_id
        self._seen = b""

    async def feed(self, chunk: bytes) -> bool:
        self._seen = self._seen + chunk[: self._LOOK]
        found = _RESPONSE_ID.search(self._seen)
        if found is not None:
            await self._affinity.remember(found[1].decode(), self._deployment, self._key_id)
            return True
        return len(self._seen) >= self._LOOK


# The response object's own `id` (not `previous_response_id`: its key is quoted on both sides).
_RESPONSE_ID = re.compile(rb'"id"\s*:\s*"(resp_[A-Za-z0-9_-]{1,128})"')


def needs_placements(deployments: list[Deployment]) -> bool:
    """Whether some model is served by more than one resource, so an id's resource has to be remembered."""
    endpoints: dict[str, set[str]] = {}
    for deployment in deployments:
        if deployment.endpoint:
            endpoints.setdefault(deployment.model, set()).add(deployment.endpoint)
    return any(len(found) > 1 for found in endpoints.values())

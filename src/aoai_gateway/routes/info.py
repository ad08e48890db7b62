"""Routes the gateway answers itself: the model list and health checks.

GET /v1/models, /v1/models/{id}, /openai/v1/models, /healthz, /readyz

/healthz is liveness (the process answers); /readyz is 200 only while the backing services the settings need
answer (the database in `auth: keys`, Redis when `redis_url` is set), else 503 naming the ones that do not.
"""

from __future__ import annotations

import time

import orjson

from ..access import Access
from ..config import Settings
from ..errors import ModelNotFound
from ..http.asgi import Send
from ..http.paths import Router
from ..http.request import Request
from ..http.responses import send_json
from ..providers import PROVIDERS


def add_info_routes(router: Router, settings: Settings, access: Access) -> None:
    created = int(time.time())
    owners: dict[str, str] = {}
    for deployment in settings.deployments:
        owners.setdefault(deployment.model, PROVIDERS[deployment.provider].owned_by)
    objects = {
        name: {"id": name, "object": "model", "created": created, "owned_by": owner} for name, owner in owners.items()
    }
    listing = orjson.dumps({"object": "list", "data": list(objects.values())})

    async def visible(request: Request) -> list[str] | None:
        """In `auth: keys` mode the caller must hold a key, and sees only the models it may use."""
        return await access.visible_models(request, list(objects))

    async def list_models(request: Request, send: Send, params: dict[str, str]) -> None:
        allowed = await visible(request)
        if allowed is None:
            await send_json(send, 200, listing)
            return
        data = [objects[name] for name in allowed]
        await send_json(send, 200, orjson.dumps({"object": "list", "data": data}))

    async def get_model(request: Request, send: Send, params: dict[str, str]) -> None:
        allowed = await visible(request)
        found = objects.get(params["model"])
        if found is None or (allowed is not None and params["model"] not in allowed):
            raise ModelNotFound(params["model"], available=objects if allowed is None else allowed)
        await send_json(send, 200, orjson.dumps(found))

    async def healthz(request: Request, send: Send, params: dict[str, str]) -> None:
        await send_json(send, 200, b'{"status":"ok"}')

    async def readyz(request: Request, send: Send, params: dict[str, str]) -> None:
        # Routes exist only once the gateway is built (models loaded, stores open): before that the app
        # answers 503 itself. After that, ready means the services the settings need answer (cached for 1 s).
        down = await access.readiness()
        if down:
            body = {"status": "unavailable", "down": down, "models": len(objects)}
            await send_json(send, 503, orjson.dumps(body), headers=[(b"retry-after", b"1")])
            return
        await send_json(send, 200, orjson.dumps({"status": "ready", "models": len(objects)}))

    for base in {settings.api_base, "/openai/v1"}:
        router.add(f"{base}/models", ["GET"], list_models)
        router.add(f"{base}/models/{{model:path}}", ["GET"], get_model)
    router.add("/healthz", ["GET"], healthz)
    router.add("/readyz", ["GET"], readyz)

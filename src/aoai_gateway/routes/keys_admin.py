"""The admin API for gateway keys and usage (master key): thin over the key store and the ledger.

POST   /admin/keys            {"name": "ci", "models": ["gpt-4o"], "rpm": 60}   -> 201, the secret once
GET    /admin/keys            GET /admin/keys/{id}
PATCH  /admin/keys/{id}       {"rpm": 120}
DELETE /admin/keys/{id}       revoke (takes effect on the next request)
GET    /admin/usage?by=model|key|day|event|deployment&key=&event=&since=ISO8601&limit=&offset=
       rows ordered by the group; with `limit` (1-10000) and/or `offset` (>= 0) one page of them, and
       `has_more: true` when rows follow it (the next page: offset + limit)
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from ..access.runtime import ManagedAccess
from ..access.specs import KeyRequest, KeyUpdate, parse_when
from ..api_call import parse_json
from ..config import AdminSettings
from ..errors import GatewayError, InvalidRequest, NotFound
from ..http.asgi import Send
from ..http.paths import Router
from ..http.request import Request
from ..http.responses import send_json
from ..store import usage_report
from ..store.usage import GROUPS
from .admin import require_master_key

Model = TypeVar("Model", bound=BaseModel)


class KeysDisabled(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "keys_disabled"


def validated(model: type[Model], body: bytes) -> Model:
    try:
        return model.model_validate(parse_json(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidRequest(f"{where}: {first['msg']}", param=where or None) from None


def add_key_routes(router: Router, settings: AdminSettings, managed: ManagedAccess | None) -> None:
    def store(request: Request) -> ManagedAccess:
        require_master_key(request, settings)
        found = managed
        if found is None:
            raise KeysDisabled("Gateway keys need `auth: keys` in the configuration.")
        return found

    async def create(request: Request, send: Send, params: dict[str, str]) -> None:
        access = store(request)
        spec = validated(KeyRequest, await request.body(1024 * 1024)).to_spec()
        key, secret = await access.keys.create(spec)
        await send_json(send, 201, orjson.dumps({**key.public(), "secret": secret}))

    async def listing(request: Request, send: Send, params: dict[str, str]) -> None:
        keys = await store(request).keys.list()
        await send_json(send, 200, orjson.dumps({"object": "list", "data": [k.public() for k in keys]}))

    async def show(request: Request, send: Send, params: dict[str, str]) -> None:
        key = await store(request).keys.get(params["key_id"])
        if key is None:
            raise NotFound(f"No key {params['key_id']!r}.")
        await send_json(send, 200, orjson.dumps(key.public()))

    async def update(request: Request, send: Send, params: dict[str, str]) -> None:
        access = store(request)
        changes = validated(KeyUpdate, await request.body(1024 * 1024)).changes()
        key = await access.keys.update(params["key_id"], **changes)
        if key is None:
            raise NotFound(f"No key {params['key_id']!r}.")
        await send_json(send, 200, orjson.dumps(key.public()))

    async def revoke(request: Request, send: Send, params: dict[str, str]) -> None:
        access = store(request)
        if await access.keys.get(params["key_id"]) is None:
            raise NotFound(f"No key {params['key_id']!r}.")
        await access.keys.revoke(params["key_id"])
        await send_json(send, 200, orjson.dumps({"id": params["key_id"], "revoked": True}))

    async def usage(request: Request, send: Send, params: dict[str, str]) -> None:
        access = store(request)
        filters = usage_query(dict(request.query))
        limit = filters.get("limit")
        if limit is not None:
            filters["limit"] = limit + 1  # one more row tells whether another page follows
        await access.ledger.flush()
        rows = await usage_report(access.db, **filters)
        body: dict[str, Any] = {"object": "list", "data": rows[:limit] if limit is not None else rows}
        if limit is not None or "offset" in filters:
            body["has_more"] = limit is not None and len(rows) > limit
        await send_json(send, 200, orjson.dumps(body))

    router.add("/admin/keys", ["GET", "POST"], lambda r, s, p: (create if r.method == "POST" else listing)(r, s, p))
    router.add(
        "/admin/keys/{key_id}",
        ["GET", "PATCH", "DELETE"],
        lambda r, s, p: {"GET": show, "PATCH": update, "DELETE": revoke}[r.method](r, s, p),
    )
    router.add("/admin/usage", ["GET"], usage)


MAX_PAGE = 10_000


def usage_query(query: dict[str, str]) -> dict[str, Any]:
    """`usage_report`'s arguments from GET /admin/usage's query; `InvalidRequest` naming the bad parameter."""
    by = query.get("by", "model")
    if by not in GROUPS:
        raise InvalidRequest(f"by must be one of {', '.join(GROUPS)}.", param="by")
    filters: dict[str, Any] = {"by": by}
    for param, argument in (("key", "key_id"), ("event", "event_id")):
        if param in query:
            if "\x00" in query[param]:  # PostgreSQL cannot even compare text holding NUL
                raise InvalidRequest(f"{param} must not contain NUL characters.", param=param)
            filters[argument] = query[param]
    if "since" in query:
        try:
            filters["since"] = parse_when(query["since"])
        except (ValueError, OverflowError) as exc:
            raise InvalidRequest(str(exc), param="since") from None
    for param, low, high in (("limit", 1, MAX_PAGE), ("offset", 0, MAX_OFFSET)):
        if param in query:
            filters[param] = bounded_int(query, param, low, high)
    return filters


MAX_OFFSET = 2**62


def bounded_int(query: dict[str, str], param: str, low: int, high: int, default: int | None = None) -> int:
    """`query[param]` as an integer in low..high (`default` when absent); `InvalidRequest` naming it otherwise."""
    value = query.get(param)
    if value is None and default is not None:
        return default
    # Length first: int() of thousands of digits is slow, and refused past 4300.
    if value is None or not (value.isascii() and value.isdigit() and len(value) <= 19) or not low <= int(value) <= high:
        raise InvalidRequest(f"{param} must be an integer from {low} to {high}; got {value!r}.", param=param)
    return int(value)

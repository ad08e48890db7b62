"""Admin pages for gateway keys (signed in): list, create with caps (the secret shown once), revoke.

    GET  {prefix}/admin/keys?offset=N            fifty keys a page, newest first (one indexed page query)
    POST {prefix}/admin/keys                     name, models, caps, expiry -> 303 to the listing, which shows
                                                 the new key's secret once
    POST {prefix}/admin/keys/{key_id}/revoke     takes effect on the key's next request

The same validation as `POST /admin/keys` (`KeyRequest`): names free of control characters, caps in range,
expiry with a time zone. Models must be ones this gateway serves, so a typo cannot make a key that works for none.

Creation answers with a redirect (POST-redirect-GET), so reloading the page cannot post the form again and make a
second key. The secret reaches the next page in a cookie of its own (HttpOnly, SameSite=Strict, only sent to the
keys pages, gone after 60 s), which that page deletes as it shows the secret: no worker keeps it, so this works
with `server.workers` > 1, and a reload shows the listing without it.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from ..access.specs import KeyRequest
from ..errors import GatewayError, InvalidRequest, NotFound
from ..http.paths import Router
from ..moments import iso
from ..store.keys import GatewayKey
from .admin import AdminPages, page_offset
from .pages import Html, Pages, Visit
from .security import cookie_header

PAGE = 50
NEW_KEY_COOKIE = "aoai_console_new_key"
NEW_KEY_SECONDS = 60
CAPS = ("rpm", "tpm", "daily_requests", "daily_tokens", "max_tokens", "budget_tokens")


class KeyPages:
    def __init__(self, pages: Pages, admin: AdminPages, models: list[str]) -> None:
        self.pages = pages
        self.admin = admin
        self.models = models

    async def listing(self, visit: Visit, params: dict[str, str]) -> Html:
        if not self.admin.signed_in(visit):
            return visit.redirect(f"{self.pages.prefix}/sign-in")
        offset = page_offset(dict(visit.request.query).get("offset", "0"))
        made = visit.cookies.get(NEW_KEY_COOKIE)
        if made is None:
            return await self._page(visit, offset=offset)
        visit.extra_headers.append(self._new_key_cookie(visit, "", max_age=0))  # shown this once
        key_id, _, secret = made.partition(".")
        key = await self.admin.store().keys.by_secret(secret) if secret else None
        if key is None or key.id != key_id:  # a forged or stale cookie shows nothing
            return await self._page(visit, offset=offset)
        return await self._page(visit, offset=offset, secret={"value": secret, "name": key.name, "id": key.id})

    def _new_key_cookie(self, visit: Visit, value: str, max_age: int) -> tuple[bytes, bytes]:
        path = f"{self.pages.prefix}/admin/keys"
        return cookie_header(NEW_KEY_COOKIE, value, path=path, secure=visit.secure, max_age=max_age)

    async def _page(
        self, visit: Visit, *, offset: int = 0, status: int = 200, error: GatewayError | None = None, **extra: Any
    ) -> Html:
        keys, total = await self.admin.store().keys.newest(limit=PAGE, offset=offset)
        shown = [_row(key) for key in keys]
        return visit.html(
            "keys.html",
            status,
            no_store="secret" in extra,
            title="Keys",
            keys=shown,
            total=total,
            offset=offset,
            page=PAGE,
            models=self.models,
            error=error,
            form=extra.pop("form", {}),
            secret=extra.pop("secret", None),
        )

    async def create(self, visit: Visit, params: dict[str, str]) -> Html:
        form = await visit.form()
        self.admin.require(visit)
        fields = {k: v.strip() for k, v in form.items() if k != "csrf" and v.strip()}
        try:
            request = _key_request(fields, self.models)
        except GatewayError as exc:
            return await self._page(visit, status=exc.status, error=exc, form=fields)
        key, secret = await self.admin.store().keys.create(request.to_spec())
        visit.extra_headers.append(self._new_key_cookie(visit, f"{key.id}.{secret}", max_age=NEW_KEY_SECONDS))
        return visit.redirect(f"{self.pages.prefix}/admin/keys")

    async def revoke(self, visit: Visit, params: dict[str, str]) -> Html:
        await visit.form()
        self.admin.require(visit)
        store = self.admin.store()
        if await store.keys.get(params["key_id"]) is None:
            raise NotFound(f"No key {params['key_id']!r}.")
        await store.keys.revoke(params["key_id"])
        return visit.redirect(f"{self.pages.prefix}/admin/keys")


def _key_request(fields: dict[str, str], served: list[str]) -> KeyRequest:
    data: dict[str, Any] = {"name": fields.get("name", "")}
    if "models" in fields:
        models = [m.strip() for m in fields["models"].split(",") if m.strip()]
        unknown = [m for m in models if m not in served]
        if unknown:
            raise InvalidRequest(
                f"models: this gateway serves no {', '.join(unknown)}; it serves {', '.join(served) or 'none'}.",
                param="models",
            )
        data["models"] = models
    for cap in CAPS:
        if cap in fields:
            if not (fields[cap].isascii() and fields[cap].isdigit() and len(fields[cap]) <= 16):
                raise InvalidRequest(f"{cap}: a whole number, or empty for no cap.", param=cap)
            data[cap] = int(fields[cap])
    if "expires_at" in fields:
        data["expires_at"] = fields["expires_at"]
    try:
        return KeyRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidRequest(f"{where}: {first['msg']}", param=where or None) from None


def _row(key: GatewayKey) -> dict[str, Any]:
    now = time.time()
    status = "active"
    if key.revoked_at is not None:
        status = "revoked"
    elif key.expires_at is not None and now >= key.expires_at:
        status = "expired"
    caps = ", ".join(f"{cap} {getattr(key.limits, cap)}" for cap in CAPS if getattr(key.limits, cap) is not None)
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "models": ", ".join(key.models) if key.models is not None else "all",
        "caps": caps or "none",
        "expires": iso(key.expires_at) if key.expires_at is not None else "never",
        "event": key.event_id,
        "status": status,
    }


def register_routes(router: Router, pages: Pages, keys: KeyPages) -> None:
    prefix = pages.prefix
    listing, create = pages.reader(keys.listing), pages.handler(keys.create)
    router.add(
        f"{prefix}/admin/keys", ["GET", "POST"], lambda r, s, p: (create if r.method == "POST" else listing)(r, s, p)
    )
    router.add(f"{prefix}/admin/keys/{{key_id}}/revoke", ["POST"], pages.handler(keys.revoke))

"""Bearer tokens from an Entra ID credential, cached in front of it: one token request however many calls wait.

    auth = EntraTokenAuth(open_credential(settings), settings)
    headers = await auth.headers()            # [("authorization", "Bearer eyJ...")], fetched once, then cached

A token is used until `refresh_margin_seconds` before it expires (at most half its lifetime); from then on the
first call starts one renewal in the background and every call keeps the current token until the new one is
there. Only a missing or expired token makes calls wait, all of them on the same request (`asyncio.shield`: a
caller that goes away does not cancel it for the others). azure-identity's own caches differ by credential (the
Azure CLI one has none); this one makes the hot path a clock read and a comparison for every kind.

Any failure of the credential (the token endpoint's error, a timeout, a missing identity) is this module's one
seam to the gateway's errors: `UpstreamTokenUnavailable`, a 502 naming the credential's kind; the reason is
logged, never sent to the caller.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import UpstreamTokenUnavailable

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from ..config.entra import EntraSettings

log = logging.getLogger("aoai_gateway.entra")

_EXPIRY_SKEW = 5.0  # a token this close to its expiry is not sent: it could expire on the way
_RETRY_SECONDS = 10.0  # after a failed background renewal, the next try waits this long (the old token serves)


class EntraTokenAuth:
    """The `UpstreamAuth` of a deployment with `entra:`: `static` is None, so the service awaits `headers()`."""

    static: list[tuple[str, str]] | None = None

    def __init__(
        self, credential: AsyncTokenCredential, settings: EntraSettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.credential = credential
        self.settings = settings
        self.kind = settings.credential
        self.token_requests = 0  # how many times the credential was asked (tests, `config check`)
        self._clock = clock
        self._headers: list[tuple[str, str]] = []
        self._refresh_at = -math.inf  # from then on, renew
        self._expires_at = -math.inf  # from then on, wait for the renewal
        self._next_try = -math.inf
        self._renewal: asyncio.Task[list[tuple[str, str]]] | None = None

    async def headers(self) -> list[tuple[str, str]]:
        now = self._clock()
        if now < self._refresh_at:
            return self._headers
        if now < self._expires_at - _EXPIRY_SKEW:
            if self._renewal is None and now >= self._next_try:
                self._start(background=True)
            return self._headers
        renewal = self._renewal or self._start(background=False)
        return await asyncio.shield(renewal)

    def _start(self, *, background: bool) -> asyncio.Task[list[tuple[str, str]]]:
        renewal = asyncio.get_running_loop().create_task(self._renew(background))
        self._renewal = renewal
        renewal.add_done_callback(_retrieved)
        return renewal

    async def _renew(self, background: bool) -> list[tuple[str, str]]:
        self.token_requests += 1
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                token = await self.credential.get_token(self.settings.scope)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every credential failure, whatever its type, is the gateway's config at fault
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            self._next_try = self._clock() + _RETRY_SECONDS
            log.warning(
                "entra credential %s could not get a token for %s%s: %s",
                self.settings.label(),
                self.settings.scope,
                " (the current token serves until it expires)" if background else "",
                reason,
            )
            raise UpstreamTokenUnavailable(self.kind) from None
        finally:
            self._renewal = None
        now = self._clock()
        expires = float(token.expires_on)
        self._headers = [("authorization", f"Bearer {token.token}")]
        self._expires_at = expires
        self._refresh_at = expires - min(self.settings.refresh_margin_seconds, max(0.0, expires - now) / 2)
        return self._headers

    async def aclose(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
        await self.credential.close()


def _retrieved(task: asyncio.Task[list[tuple[str, str]]]) -> None:
    # A background renewal's failure is logged in _renew; nobody may be left to await it.
    if not task.cancelled():
        task.exception()


__all__ = ["EntraTokenAuth"]

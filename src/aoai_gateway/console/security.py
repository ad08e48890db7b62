"""What every console answer carries, and the CSRF check every form post passes.

    headers = page_headers(secure=request.scope.get("scheme") == "https")
    guard = CsrfGuard(secret)                         # one per gateway; the secret never leaves the process
    token = guard.token(cookie_value)                  # the hidden `csrf` field of a form
    guard.check(cookie_value, form.get("csrf"))        # 403 `csrf_failed` unless the pair matches

The Content-Security-Policy allows scripts, styles and fetches from the gateway's own origin only: no inline
script or style anywhere (templates hold none), and no framing (`frame-ancestors 'none'`).

CSRF is a signed double submit: each browser holds a random HttpOnly, SameSite=Strict cookie, and each form
carries HMAC(secret, cookie). Another site can neither read the cookie nor compute the token, and the check
needs no server-side state, so it holds across worker processes when the secret is derived from the master key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from ..errors import PermissionDenied
from ..http.asgi import RawHeaders

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "media-src 'self' blob:; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
CSRF_COOKIE = "aoai_console_csrf"
CSRF_FIELD = "csrf"


def page_headers(*, no_store: bool = False) -> RawHeaders:
    """The security headers of every console answer; `no_store` for pages that show a secret."""
    headers: RawHeaders = [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), geolocation=(), microphone=(self)"),
    ]
    if no_store:
        headers.append((b"cache-control", b"no-store"))
    return headers


def cookie_header(name: str, value: str, *, path: str, secure: bool, max_age: int | None = None) -> tuple[bytes, bytes]:
    """A `set-cookie` header: HttpOnly and SameSite=Strict always, Secure over https; max_age 0 deletes it."""
    parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return b"set-cookie", "; ".join(parts).encode("latin-1")


def read_cookies(header: str) -> dict[str, str]:
    """`a=1; b=2` -> {"a": "1", "b": "2"}; malformed pairs are skipped, the first of a repeated name wins."""
    cookies: dict[str, str] = {}
    for pair in header.split(";"):
        name, sep, value = pair.strip().partition("=")
        name = name.strip()
        if sep and name and name not in cookies:
            cookies[name] = value.strip()
    return cookies


def new_secret() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()


class CsrfGuard:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def for_master_key(cls, master_key: str | None) -> CsrfGuard:
        """Derived from the master key, so every worker process accepts the others' tokens; random without one."""
        if master_key is None:
            return cls(os.urandom(32))
        return cls(hmac.new(master_key.encode(), b"aoai-gateway console csrf", hashlib.sha256).digest())

    def token(self, cookie: str) -> str:
        digest = hmac.new(self._secret, cookie.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def check(self, cookie: str | None, token: str | None) -> None:
        if not cookie or not token or not hmac.compare_digest(self.token(cookie).encode(), token.encode("utf-8")):
            raise PermissionDenied(
                "This form expired or did not come from this site; reload the page and send it again.",
                param=CSRF_FIELD,
                code="csrf_failed",
            )
